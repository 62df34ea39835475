/**
 * Delivery expiry by the indexed sweep (deliveries.expires_at) instead of one queued job per
 * letter. The sweeps run with the test's own `now` (sweepExpiredDeliveries' control point), so
 * nothing sleeps until a delivery is due.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import t from 'tap';
import { service, startBackground } from '../../../services/ingestion/app.js';
import { EXPIRY_JOB, EXPIRY_RETRY_SECONDS, INGESTION_QUEUE, sweepExpiredDeliveries, type SweepResult } from '../../../services/ingestion/expiry.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { storageContext } from '../../../shared/storage/context.js';
import { testService } from '../../helpers/service.js';
import { waitFor } from '../../helpers/wait.js';
import { letter, multipart, newKey, PDF, PERSONS, PRINT, PRINTER, seedRegistry, SENDER } from './fixtures.js';

const EXPIRY_SECONDS = 3600;

t.test('delivery expiry sweep', async (t) => {
  const svc = await testService(t, service, { env: { DELIVERY_EXPIRY_SECONDS: String(EXPIRY_SECONDS), EXPIRY_SWEEP_INTERVAL_MS: '50' } });
  const db = svc.deps.db.kysely;
  const storage = storageContext(svc.deps);
  await seedRegistry(db);
  const auth = { authorization: `Bearer ${await svc.token({ org: SENDER, scope: SCOPES.send })}` };
  const logs: string[] = [];
  const logger = {
    info: (obj: unknown, msg?: string) => void logs.push(JSON.stringify({ obj, msg })),
    warn: (obj: unknown, msg?: string) => void logs.push(JSON.stringify({ obj, msg })),
  };
  const sweep = (now: Date, limit?: number) => sweepExpiredDeliveries(svc.deps.db, storage, { expirySeconds: EXPIRY_SECONDS, now, logger, ...(limit ? { limit } : {}) });

  const send = async (over: Record<string, unknown> = {}) => {
    const b = multipart(letter(over), [{ name: 'vedtak.pdf', content: PDF(1000) }]);
    const res = await svc.app.inject({ method: 'POST', url: '/v1/messages', headers: { ...auth, 'content-type': b.contentType, 'idempotency-key': newKey() }, payload: b.payload });
    if (res.statusCode !== 201) throw new Error(`not accepted: ${res.statusCode} ${res.body}`);
    const id = res.json().id as string;
    const delivery = await db.selectFrom('deliveries').selectAll().where('message_id', '=', id).executeTakeFirstOrThrow();
    return { id, delivery, expiresAt: delivery.expires_at! };
  };
  const deliveryOf = (id: string) => db.selectFrom('deliveries').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const eventTypes = async (messageId: string) => (await db.selectFrom('message_events').select('type').where('message_id', '=', messageId).orderBy('seq').execute()).map((e) => e.type);
  const status = async (id: string) => (await svc.app.inject({ method: 'GET', url: `/v1/messages/${id}`, headers: auth })).json();
  const plus = (d: Date, ms: number) => new Date(d.getTime() + ms);

  await t.test('an accepted letter gets expires_at and no outbox row; the sweep expires it when due, not before', async (t) => {
    const a = await send();
    t.ok(a.expiresAt instanceof Date, 'expires_at is set');
    t.equal(a.expiresAt.getTime() - a.delivery.created_at.getTime(), EXPIRY_SECONDS * 1000, 'DELIVERY_EXPIRY_SECONDS after the delivery was written');
    t.same(await db.selectFrom('outbox').select('id').execute(), [], 'the intake wrote no outbox row (no expiry job)');

    const early = await sweep(plus(a.expiresAt, -1000));
    t.equal(early.claimed, 0, 'a sweep before it is due takes nothing');
    t.equal((await deliveryOf(a.delivery.id)).state, 'READY');
    t.same(await eventTypes(a.id), ['SEALED']);

    const due = await sweep(plus(a.expiresAt, 1000));
    t.match(due, { claimed: 1, expired: 1, print: 0, failed: [] });
    t.equal((await deliveryOf(a.delivery.id)).state, 'FAILED', 'withdrawn from the provider');
    t.match(await status(a.id), { status: 'EXPIRED', eFormidlingStatus: 'LEVETID_UTLOPT' });
    const receipts = (await svc.app.inject({ method: 'GET', url: '/v1/receipts', headers: auth })).json().receipts.filter((r: { messageId: string }) => r.messageId === a.id);
    t.match(receipts, [{ type: 'ERROR', receipt: { data: { reason: 'EXPIRED', errorType: 'SERVER', deliveryId: a.delivery.id } } }]);
    t.equal((await sweep(plus(a.expiresAt, 2000))).claimed, 0, 'an expired delivery is not taken again');
    t.same(await eventTypes(a.id), ['SEALED', 'ERROR'], 'one ERROR event');
  });

  await t.test('with a print fallback: the sweep sends it to print; the print delivery expires in its turn', async (t) => {
    const a = await send({ print: PRINT });
    const r = await sweep(plus(a.expiresAt, 1000));
    t.match(r, { claimed: 1, print: 1, expired: 0 });
    const all = await db.selectFrom('deliveries').selectAll().where('message_id', '=', a.id).orderBy('created_at').execute();
    t.equal(all.length, 2);
    t.match(all[1], { route: 'PRINT', provider_orgnr: PRINTER, state: 'READY', package_id: a.delivery.package_id });
    const printExpires = all[1]!.expires_at!;
    t.ok(printExpires instanceof Date, 'the print delivery has expires_at');
    t.equal(printExpires.getTime() - all[1]!.created_at.getTime(), EXPIRY_SECONDS * 1000);
    t.match(await status(a.id), { status: 'ACCEPTED', route: 'PRINT', provider: { orgnr: PRINTER } });
    t.same(await db.selectFrom('outbox').select('id').execute(), [], 'no expiry job for the print delivery either');

    const again = await sweep(plus(printExpires, 1000));
    t.match(again, { claimed: 1, expired: 1, print: 0 }, 'a print delivery has no further fallback');
    t.same(await eventTypes(a.id), ['SEALED', 'FALLBACK_TO_PRINT', 'SEALED', 'ERROR']);
    t.match(await status(a.id), { status: 'EXPIRED' });
  });

  await t.test('acknowledged and cancelled deliveries are left alone; the sweep reads the partial index', async (t) => {
    const acked = await send();
    await db.updateTable('deliveries').set({ state: 'DELIVERED', acked_at: new Date() }).where('id', '=', acked.delivery.id).execute();
    const cancelled = await send();
    t.equal((await svc.app.inject({ method: 'DELETE', url: `/v1/messages/${cancelled.id}`, headers: auth })).statusCode, 200);
    const r = await sweep(plus(acked.expiresAt, 86_400_000));
    t.equal(r.claimed, 0, 'nothing due among unacknowledged deliveries');
    t.equal((await deliveryOf(acked.delivery.id)).state, 'DELIVERED');
    t.equal((await deliveryOf(cancelled.delivery.id)).state, 'CANCELLED');
    t.same(await eventTypes(acked.id), ['SEALED']);

    const plan = await db.connection().execute(async (c) => {
      await sql`set enable_seqscan = off`.execute(c);
      const p = await sql<{ 'QUERY PLAN': string }>`explain select id, message_id from deliveries where state = 'READY' and expires_at <= now() order by expires_at limit 100 for update skip locked`.execute(c);
      await sql`reset enable_seqscan`.execute(c);
      return p.rows.map((row) => row['QUERY PLAN']).join('\n');
    });
    t.match(plan, /deliveries_expiry_due/, 'the due query can use the partial index');
  });

  await t.test('several sweeps at once: locked deliveries are skipped, each delivery expires once', async (t) => {
    const letters = await Promise.all(Array.from({ length: 6 }, () => send()));
    const at = plus(new Date(Math.max(...letters.map((l) => l.expiresAt.getTime()))), 1000);

    // Another process holds two of them (its sweep's row locks): this sweep does not wait for them.
    const held = letters.slice(0, 2).map((l) => l.delivery.id);
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const holder = db.transaction().execute(async (trx) => {
      await trx.selectFrom('deliveries').select('id').where('id', 'in', held).forUpdate().execute();
      locked();
      await released;
    });
    await isLocked;
    const first = await sweep(at);
    release();
    await holder;
    t.match(first, { claimed: 4, expired: 4 }, 'the four not locked elsewhere');
    for (const id of held) t.equal((await deliveryOf(id)).state, 'READY', 'a locked one was skipped, not waited for');

    // Two sweeps running at once, two deliveries a transaction, until nothing is left.
    const more = await Promise.all(Array.from({ length: 4 }, () => send()));
    const at2 = plus(new Date(Math.max(...more.map((l) => l.expiresAt.getTime()))), 1000);
    const drain = async () => {
      const rounds: SweepResult[] = [];
      for (;;) {
        const r = await sweep(at2, 2);
        rounds.push(r);
        if (r.claimed < 2) return rounds;
      }
    };
    const both = (await Promise.all([drain(), drain()])).flat();
    const total = both.reduce((n, r) => n + r.expired, 0);
    t.equal(total, 6, 'the two held before and the four new ones, once each');
    t.equal(both.reduce((n, r) => n + r.acknowledged + r.failed.length, 0), 0, 'no sweep saw one the other had taken');
    for (const l of [...letters, ...more]) {
      t.same(await eventTypes(l.id), ['SEALED', 'ERROR'], `one ERROR event for ${l.id}`);
      t.equal((await deliveryOf(l.delivery.id)).state, 'FAILED');
    }
  });

  await t.test('a delivery whose expiry throws does not stop the others; it is logged by id and error class only', async (t) => {
    const good = await Promise.all(Array.from({ length: 3 }, () => send({ title: 'Vedtak om barnetrygd' })));
    const template = good[0]!.delivery;
    // A delivery whose letter is missing: expiring it throws (no message row) after it was withdrawn.
    const bad = randomUUID();
    await db
      .insertInto('deliveries')
      .values({
        id: bad,
        message_id: randomUUID(),
        sender_orgnr: SENDER,
        person_id: PERSONS.digital,
        route: 'DIGITAL',
        provider_orgnr: template.provider_orgnr,
        mailbox_address: template.mailbox_address,
        title: 'Vedtak om barnetrygd',
        security_level: 4,
        available_at: template.available_at,
        package_id: template.package_id,
        expires_at: plus(template.expires_at!, -60_000),
      })
      .execute();
    logs.length = 0;
    const now = plus(new Date(Math.max(...good.map((l) => l.expiresAt.getTime()))), 1000);
    const r = await sweep(now);
    t.match(r, { claimed: 4, expired: 3, failed: [bad] }, 'the bad one first (oldest), the three after it expired');
    for (const l of good) t.same(await eventTypes(l.id), ['SEALED', 'ERROR']);
    const row = await deliveryOf(bad);
    t.equal(row.state, 'READY', 'its withdrawal was rolled back with it');
    t.equal(row.expires_at?.getTime(), now.getTime() + EXPIRY_RETRY_SECONDS * 1000, 'looked at again later, not at the head of every sweep');
    t.equal((await sweep(plus(now, 1000))).claimed, 0, 'not retried at once');

    const warned = logs.filter((l) => l.includes('delivery expiry failed'));
    t.equal(warned.length, 1);
    t.match(JSON.parse(warned[0]!), { obj: { deliveryId: bad, errorClass: 'NoResultError' } });
    for (const secret of [PERSONS.digital, 'barnetrygd']) t.notOk(logs.join('\n').includes(secret), `no ${secret === PERSONS.digital ? 'personId' : 'title'} in the log`);

    const retried = await sweep(plus(now, EXPIRY_RETRY_SECONDS * 1000));
    t.match(retried, { claimed: 1, failed: [bad] }, 'retried once due again');
    await db.deleteFrom('deliveries').where('id', '=', bad).execute();
  });

  await t.test('the background: the sweep runs every EXPIRY_SWEEP_INTERVAL_MS; expire-delivery jobs queued before still run', async (t) => {
    const background = await startBackground(svc.deps);
    t.teardown(() => background.stop());
    const swept = await send();
    await db.updateTable('deliveries').set({ expires_at: new Date(Date.now() - 1000) }).where('id', '=', swept.delivery.id).execute();
    await waitFor('the background sweep to expire it', async () => (await deliveryOf(swept.delivery.id)).state === 'FAILED');
    t.same(await eventTypes(swept.id), ['SEALED', 'ERROR']);

    // An installation upgraded with jobs still queued: the kept worker runs them.
    const legacy = await send();
    await svc.deps.queues.queue(INGESTION_QUEUE).add(EXPIRY_JOB, { messageId: legacy.id, deliveryId: legacy.delivery.id }, { jobId: `legacy-${legacy.id}` });
    await waitFor('the queued job to expire it', async () => (await deliveryOf(legacy.delivery.id)).state === 'FAILED');
    t.same(await eventTypes(legacy.id), ['SEALED', 'ERROR']);
    // Its own expires_at coming later changes nothing.
    t.equal((await sweep(plus(legacy.expiresAt, 1000))).claimed, 0);
    t.same(await eventTypes(legacy.id), ['SEALED', 'ERROR']);
  });
});
