import pg from 'pg';
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { connectDb } from '../../shared/db/connect.js';
import { migrateToLatest, pendingMigrations } from '../../shared/db/migrate.js';

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
