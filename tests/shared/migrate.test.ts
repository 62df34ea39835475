import pg from 'pg';
import { sql, type Kysely } from 'kysely';
import t from 'tap';
import { randomBytes } from 'node:crypto';
import * as expiresAt from '../../migrations/0025_delivery_expires_at.js';
import { connectDb } from '../../shared/db/connect.js';
import { migrateToLatest, pendingMigrations } from '../../shared/db/migrate.js';
import { testDatabase } from '../helpers/database.js';

t.test('several processes migrating an empty database at once apply each migration once', async (t) => {
  const admin = process.env.TEST_DATABASE_URL!;
  const name = `pb_empty_${randomBytes(4).toString('hex')}`;
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query(`create database ${name}`);
  t.teardown(async () => {
    await c.query(`drop database if exists ${name} with (force)`);
    await c.end();
  });
  const url = new URL(admin);
  url.pathname = `/${name}`;
  const dbs = Array.from({ length: 4 }, () => connectDb(url.toString(), { poolSize: 2 }));
  t.teardown(() => Promise.all(dbs.map((d) => d.close())));

  t.ok((await pendingMigrations(dbs[0]!.kysely)).includes('0001_foundation'), 'an empty database has everything pending');
  const applied = await Promise.all(dbs.map((d) => migrateToLatest(d.kysely)));
  const all = applied.flat();
  t.equal(new Set(all).size, all.length, 'no migration ran twice');
  t.ok(all.includes('0001_foundation'));
  t.same(await pendingMigrations(dbs[0]!.kysely), []);
  const { rows } = await dbs[0]!.pool.query('select count(*)::int as n from kysely_migration');
  t.equal(rows[0].n, all.length);
});

t.test('0025 backfills expires_at for the deliveries still waiting, and only those', async (t) => {
  const { db } = await testDatabase(t);
  // A migration takes an untyped Kysely (it never uses the app's table types).
  const k = db.kysely as unknown as Kysely<unknown>;
  await expiresAt.down(k);
  const pkg = '00000000-0000-4000-8000-000000000001';
  await sql`insert into packages (id, kek_id, iv) values (${pkg}, 'k', decode(repeat('00', 16), 'hex'))`.execute(k);
  const created = new Date('2026-01-01T00:00:00Z');
  const rows = [
    { id: '00000000-0000-4000-8000-0000000000a1', state: 'READY', kind: 'ORIGINAL' },
    { id: '00000000-0000-4000-8000-0000000000a2', state: 'DELIVERED', kind: 'ORIGINAL' },
    { id: '00000000-0000-4000-8000-0000000000a3', state: 'READY', kind: 'MOVED' },
    { id: '00000000-0000-4000-8000-0000000000a4', state: 'FAILED', kind: 'ORIGINAL' },
  ];
  for (const r of rows) {
    await sql`insert into deliveries (id, message_id, sender_orgnr, person_id, route, provider_orgnr, mailbox_address, title, security_level, available_at, package_id, state, kind, created_at)
              values (${r.id}, gen_random_uuid(), '974760673', '01017012345', 'DIGITAL', '984661185', 'a#1', 't', 4, ${created}, ${pkg}, ${r.state}, ${r.kind}, ${created})`.execute(k);
  }
  await expiresAt.up(k);
  const after = await sql<{ id: string; expires_at: Date | null }>`select id, expires_at from deliveries order by id`.execute(k);
  t.same(
    after.rows.map((r) => r.expires_at?.toISOString() ?? null),
    ['2026-01-08T00:00:00.000Z', null, null, null],
    'an unacknowledged original delivery gets created_at + 7 days; acknowledged, moved and withdrawn ones none',
  );
  const index = await sql<{ indexdef: string }>`select indexdef from pg_indexes where indexname = 'deliveries_expiry_due'`.execute(k);
  t.match(index.rows[0]?.indexdef, /WHERE \(\(state = 'READY'::text\) AND \(expires_at IS NOT NULL\)\)/);

  await t.test("with DELIVERY_EXPIRY_SECONDS set, the backfill uses the installation's expiry, not the default", async (t) => {
    const saved = process.env.DELIVERY_EXPIRY_SECONDS;
    t.teardown(() => {
      if (saved === undefined) delete process.env.DELIVERY_EXPIRY_SECONDS;
      else process.env.DELIVERY_EXPIRY_SECONDS = saved;
    });
    await expiresAt.down(k);
    process.env.DELIVERY_EXPIRY_SECONDS = String(30 * 86_400);
    await expiresAt.up(k);
    const waiting = await sql<{ expires_at: Date | null }>`select expires_at from deliveries where id = ${rows[0]!.id}`.execute(k);
    t.equal(waiting.rows[0]?.expires_at?.toISOString(), '2026-01-31T00:00:00.000Z', 'a letter waiting under a 30-day setting expires 30 days after it was created');

    await expiresAt.down(k);
    for (const bad of ['7d', '0', '-5', '31536001', '1.5']) {
      process.env.DELIVERY_EXPIRY_SECONDS = bad;
      await t.rejects(expiresAt.up(k), { message: /DELIVERY_EXPIRY_SECONDS must be a whole number of seconds/ }, `${bad}: the migration refuses to guess`);
      const column = await sql<{ n: number }>`select count(*)::int as n from information_schema.columns where table_name = 'deliveries' and column_name = 'expires_at'`.execute(k);
      t.equal(column.rows[0]?.n, 0, `${bad}: nothing half-done (the column is not added)`);
    }
    process.env.DELIVERY_EXPIRY_SECONDS = '';
    await expiresAt.up(k);
    const byDefault = await sql<{ expires_at: Date | null }>`select expires_at from deliveries where id = ${rows[0]!.id}`.execute(k);
    t.equal(byDefault.rows[0]?.expires_at?.toISOString(), '2026-01-08T00:00:00.000Z', 'empty is the default, as for the services');
  });
});
