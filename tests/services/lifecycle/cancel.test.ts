import { randomBytes } from 'node:crypto';
import pg from 'pg';
import t from 'tap';
import { service as ingestion } from '../../../services/ingestion/app.js';
import { expireDelivery, sweepExpiredDeliveries } from '../../../services/ingestion/expiry.js';
import { service as storage } from '../../../services/storage/app.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { storageContext } from '../../../shared/storage/context.js';
import { testService } from '../../helpers/service.js';
import { waitFor } from '../../helpers/wait.js';
import { DIGIPOST, letter, multipart, newKey, OTHER_SENDER, PDF, PERSONS, seedRegistry, SENDER } from '../ingestion/fixtures.js';

const PROBLEM = 'https://postbud.dev/problems/';

t.test('cancel before delivery: withdrawn, purged, CANCELLED receipt; after ack 409; a racing cancel and ack have exactly one winner', async (t) => {
  const env = { KEKS: `k1:${randomBytes(32).toString('base64')}` };
  const ing = await testService(t, ingestion, { env });
  const sto = await testService(t, storage, { env, databaseUrl: ing.config.DATABASE_URL! });
  const db = ing.deps.db.kysely;
  await seedRegistry(db);
  const sender = { authorization: `Bearer ${await ing.token({ org: SENDER, scope: SCOPES.send })}` };
  const other = { authorization: `Bearer ${await ing.token({ org: OTHER_SENDER, scope: SCOPES.send })}` };
  const provider = { authorization: `Bearer ${await sto.token({ org: DIGIPOST, scope: SCOPES.provider })}` };

  const send = async (over: Record<string, unknown> = {}) => {
    const b = multipart(letter(over), [{ name: 'vedtak.pdf', content: PDF(2000) }]);
    const res = await ing.app.inject({ method: 'POST', url: '/v1/messages', headers: { ...sender, 'content-type': b.contentType, 'idempotency-key': newKey() }, payload: b.payload });
    t.equal(res.statusCode, 201, res.body);
    const id = (res.json() as { id: string }).id;
    const d = await db.selectFrom('deliveries').select(['id', 'package_id']).where('message_id', '=', id).executeTakeFirstOrThrow();
    return { id, deliveryId: d.id, packageId: d.package_id };
  };
  const cancel = (id: string, headers = sender) => ing.app.inject({ method: 'DELETE', url: `/v1/messages/${id}`, headers });
  const ack = (deliveryId: string) => sto.app.inject({ method: 'POST', url: `/v1/deliveries/${deliveryId}/ack`, headers: provider });
  const listed = async () => {
    // A fresh lease each time: expire earlier leases so the listing shows everything READY.
    await db.updateTable('deliveries').set({ leased_until: null }).execute();
    const res = await sto.app.inject({ method: 'GET', url: '/v1/deliveries?limit=500', headers: provider });
    return (res.json() as { deliveries: { messageId: string }[] }).deliveries.map((d) => d.messageId);
  };

  await t.test('before ack: out of the listing, package purged, no alert, CANCELLED receipt and status; cancelling again replays', async (t) => {
    const a = await send({ senderReference: 'cancel-1' });
    t.ok((await listed()).includes(a.id), 'offered before the cancel');
    const res = await cancel(a.id);
    t.equal(res.statusCode, 200, res.body);
    const body = res.json() as { id: string; status: string; receiptId: string; cancelledAt: string };
    t.match(body, { id: a.id, status: 'CANCELLED' });
    t.notOk((await listed()).includes(a.id), 'withdrawn from the listing');

    const pkg = await sto.app.inject({ method: 'GET', url: `/v1/deliveries/${a.deliveryId}/package`, headers: provider });
    t.equal(pkg.statusCode, 409);
    t.equal(pkg.json().type, `${PROBLEM}storage/delivery-cancelled`);
    const stored = await db.selectFrom('packages').select(['status', 'wrapped_key']).where('id', '=', a.packageId).executeTakeFirstOrThrow();
    t.match(stored, { status: 'PURGED', wrapped_key: null }, 'data key shredded');
    t.equal((await db.selectFrom('package_chunks').select('seq').where('package_id', '=', a.packageId).execute()).length, 0, 'ciphertext gone');

    const late = await ack(a.deliveryId);
    t.equal(late.statusCode, 409, 'a late ack is refused');
    t.equal(late.json().type, `${PROBLEM}storage/delivery-cancelled`);
    const opened = await sto.app.inject({ method: 'POST', url: `/v1/deliveries/${a.deliveryId}/events`, headers: { ...provider, 'content-type': 'application/json' }, payload: { type: 'FAILED', reason: 'x' } });
    t.equal(opened.statusCode, 409);

    const receipts = (await ing.app.inject({ method: 'GET', url: '/v1/receipts?limit=100', headers: sender })).json() as { receipts: { id: string; type: string; messageId: string }[] };
    t.same(receipts.receipts.filter((r) => r.messageId === a.id).map((r) => [r.type, r.id]), [['CANCELLED', body.receiptId]], 'one CANCELLED receipt');
    const status = (await ing.app.inject({ method: 'GET', url: `/v1/messages/${a.id}`, headers: sender })).json() as { status: string; timeline: { type: string }[] };
    t.equal(status.status, 'CANCELLED');
    t.same(status.timeline.map((e) => e.type), ['SEALED', 'CANCELLED']);
    t.equal((await db.selectFrom('notification_attempts').select('id').where('message_id', '=', a.id).execute()).length, 0, 'no alert planned');
    t.equal((await db.selectFrom('outbox').select('id').where('queue', '=', 'notification').execute()).length, 0, 'nothing for the alert scheduler');

    const again = await cancel(a.id);
    t.equal(again.statusCode, 200);
    t.equal(again.headers['idempotent-replayed'], 'true');
    t.same(again.json(), body, 'the same answer');

    // The expiry sweep, when the letter's expires_at has come, does not take it; nor does an
    // expire-delivery job queued before the sweep existed.
    const { expires_at: expiresAt } = await db.selectFrom('deliveries').select('expires_at').where('id', '=', a.deliveryId).executeTakeFirstOrThrow();
    const swept = await sweepExpiredDeliveries(ing.deps.db, storageContext(ing.deps), {
      expirySeconds: 60,
      now: new Date(expiresAt!.getTime() + 1000),
      logger: { info: () => undefined, warn: () => undefined },
    });
    t.equal(swept.claimed, 0, 'the sweep leaves a cancelled delivery alone');
    const outcome = await expireDelivery(ing.deps.db, storageContext(ing.deps), { messageId: a.id, deliveryId: a.deliveryId }, 60);
    t.equal(outcome, 'acknowledged', 'expiry leaves a cancelled delivery alone');
    t.same((await db.selectFrom('message_events').select('type').where('message_id', '=', a.id).orderBy('seq').execute()).map((e) => e.type), ['SEALED', 'CANCELLED']);
  });

  await t.test('after ack: 409 ingestion/already-delivered and nothing changes', async (t) => {
    const a = await send();
    t.equal((await ack(a.deliveryId)).statusCode, 200);
    const res = await cancel(a.id);
    t.equal(res.statusCode, 409);
    t.match(res.json(), { type: `${PROBLEM}ingestion/already-delivered`, deliveryState: 'DELIVERED' });
    t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8');
    t.equal((await db.selectFrom('packages').select('status').where('id', '=', a.packageId).executeTakeFirstOrThrow()).status, 'SEALED');
  });

  await t.test("who may cancel: not another sender, not without the send scope, not a citizen, not an unknown id", async (t) => {
    const a = await send();
    const res = await cancel(a.id, other);
    t.equal(res.statusCode, 404, "another sender's letter is not found");
    t.equal(res.json().type, `${PROBLEM}ingestion/message-not-found`);
    const wrongScope = await cancel(a.id, { authorization: `Bearer ${await ing.token({ org: SENDER, scope: SCOPES.provider })}` });
    t.equal(wrongScope.statusCode, 403);
    const citizen = await cancel(a.id, { authorization: `Bearer ${await ing.token({ pid: PERSONS.digital, acr: 'idporten-loa-high' })}` });
    t.equal(citizen.statusCode, 403);
    t.equal((await ing.app.inject({ method: 'DELETE', url: `/v1/messages/${a.id}` })).statusCode, 401);
    t.equal((await cancel(crypto.randomUUID())).statusCode, 404);
    t.equal((await cancel('not-a-uuid')).statusCode, 400);
    t.equal((await db.selectFrom('deliveries').select('state').where('id', '=', a.deliveryId).executeTakeFirstOrThrow()).state, 'READY', 'still pending');
  });

  await t.test('cancel and ack released together from one row lock: exactly one wins, whichever it is', async (t) => {
    const holder = new pg.Client({ connectionString: ing.config.DATABASE_URL! });
    await holder.connect();
    t.teardown(() => holder.end());
    const dbName = (await holder.query<{ d: string }>('select current_database() as d')).rows[0]!.d;
    const winners: string[] = [];
    for (let i = 0; i < 6; i++) {
      const a = await send();
      await holder.query('begin');
      await holder.query('select id from deliveries where id = $1 for update', [a.deliveryId]);
      // Alternate who is sent first; both then queue on the row lock.
      const [first, second] = i % 2 === 0 ? [() => cancel(a.id), () => ack(a.deliveryId)] : [() => ack(a.deliveryId), () => cancel(a.id)];
      const p1 = first();
      const p2 = second();
      await waitFor('both requests to wait on the row lock', async () => {
        const { rows } = await holder.query<{ n: number }>(`select count(*)::int as n from pg_stat_activity where datname = $1 and wait_event_type = 'Lock' and pid <> pg_backend_pid()`, [dbName]);
        return rows[0]!.n >= 2;
      });
      await holder.query('commit');
      const [r1, r2] = await Promise.all([p1, p2]);
      const [cancelRes, ackRes] = i % 2 === 0 ? [r1, r2] : [r2, r1];
      const ok = [cancelRes.statusCode === 200, ackRes.statusCode === 200];
      t.equal(ok.filter(Boolean).length, 1, `round ${i}: exactly one of cancel (${cancelRes.statusCode}) and ack (${ackRes.statusCode}) succeeds`);
      const loser = ok[0] ? ackRes : cancelRes;
      t.equal(loser.statusCode, 409);
      t.equal(loser.json().type, ok[0] ? `${PROBLEM}storage/delivery-cancelled` : `${PROBLEM}ingestion/already-delivered`);
      const types = (await db.selectFrom('message_events').select('type').where('message_id', '=', a.id).orderBy('seq').execute()).map((e) => e.type);
      t.same(types, ['SEALED', ok[0] ? 'CANCELLED' : 'DELIVERED'], 'the chain holds only the winner');
      const state = (await db.selectFrom('deliveries').select('state').where('id', '=', a.deliveryId).executeTakeFirstOrThrow()).state;
      t.equal(state, ok[0] ? 'CANCELLED' : 'DELIVERED');
      winners.push(ok[0] ? 'cancel' : 'ack');
    }
    t.comment(`winners: ${winners.join(' ')}`);
  });

  await t.test('the batch ack (POST /v1/deliveries/ack) against cancels: each letter has exactly one winner', async (t) => {
    const letters = [];
    for (let i = 0; i < 8; i++) letters.push(await send());
    const [batch, ...cancels] = await Promise.all([
      sto.app.inject({ method: 'POST', url: '/v1/deliveries/ack', headers: provider, payload: { ids: letters.map((l) => l.deliveryId) } }),
      ...letters.map((l) => cancel(l.id)),
    ]);
    t.equal(batch!.statusCode, 200, batch!.body);
    const results = batch!.json().results as { id: string; ok: boolean; problem?: { type: string } }[];
    for (const [i, l] of letters.entries()) {
      const acked = results.find((r) => r.id === l.deliveryId)!;
      const cancelled = cancels[i]!.statusCode === 200;
      t.equal(Number(acked.ok) + Number(cancelled), 1, `letter ${i}: one winner (ack ${acked.ok}, cancel ${cancels[i]!.statusCode})`);
      if (!acked.ok) t.equal(acked.problem!.type, `${PROBLEM}storage/delivery-cancelled`);
      const types = (await db.selectFrom('message_events').select('type').where('message_id', '=', l.id).execute()).map((e) => e.type);
      t.equal(types.filter((x) => x === 'CANCELLED' || x === 'DELIVERED').length, 1);
    }
    // The batch also answers a letter cancelled long before with the precise type.
    const gone = await send();
    t.equal((await cancel(gone.id)).statusCode, 200);
    const late = (await sto.app.inject({ method: 'POST', url: '/v1/deliveries/ack', headers: provider, payload: { ids: [gone.deliveryId] } })).json();
    t.match(late.results, [{ ok: false, problem: { type: `${PROBLEM}storage/delivery-cancelled` } }]);
  });

  await t.test('many cancel/ack pairs at once, no barrier: each letter has exactly one winner', async (t) => {
    const letters = [];
    for (let i = 0; i < 12; i++) letters.push(await send());
    const results = await Promise.all(letters.map(async (a) => Promise.all([cancel(a.id), ack(a.deliveryId)])));
    for (const [i, [c, k]] of results.entries()) {
      t.equal([c.statusCode, k.statusCode].filter((s) => s === 200).length, 1, `letter ${i}: one winner (${c.statusCode}/${k.statusCode})`);
      const types = (await db.selectFrom('message_events').select('type').where('message_id', '=', letters[i]!.id).execute()).map((e) => e.type);
      t.equal(types.filter((x) => x === 'CANCELLED' || x === 'DELIVERED').length, 1);
    }
  });
});
