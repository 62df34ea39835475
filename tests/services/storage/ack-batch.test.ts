import { randomUUID } from 'node:crypto';
import t from 'tap';
import { service } from '../../../services/storage/app.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { testService } from '../../helpers/service.js';
import { DIGIPOST, EBOKS, insertProvider, PRINTER, providerCert, seedDelivery } from './fixtures.js';

t.test('POST /v1/deliveries/ack acknowledges many deliveries at once; each id is answered as a single ack would be', async (t) => {
  const ts = await testService(t, service);
  const db = ts.deps.db.kysely;
  for (const [orgnr, kind] of [[DIGIPOST, 'digital'], [EBOKS, 'digital'], [PRINTER, 'print']] as const) {
    await insertProvider(db, { orgnr, kind, certDer: providerCert(orgnr).certDer });
  }
  const headers = { authorization: `Bearer ${await ts.token({ org: DIGIPOST, scope: SCOPES.provider })}` };
  const mine = await Promise.all([0, 1, 2].map(() => seedDelivery(ts.deps)));
  const foreign = await seedDelivery(ts.deps, { providerOrgnr: EBOKS });
  const failed = await seedDelivery(ts.deps);
  await db.updateTable('deliveries').set({ state: 'FAILED' }).where('id', '=', failed.id).execute();
  const unknown = randomUUID();

  // The first one acknowledged alone before: acknowledging it again changes nothing.
  const single = await ts.app.inject({ method: 'POST', url: `/v1/deliveries/${mine[0]!.id}/ack`, headers });
  t.equal(single.statusCode, 200);
  const firstAck = single.json().ackedAt;

  const ids = [...mine.map((d) => d.id), foreign.id, failed.id, unknown];
  const res = await ts.app.inject({ method: 'POST', url: '/v1/deliveries/ack', headers, payload: { ids } });
  t.equal(res.statusCode, 200, res.body);
  const results = res.json().results as { id: string; ok: boolean; delivery?: { state: string; ackedAt: string }; problem?: { type: string } }[];
  t.same(results.map((r) => r.id), ids, 'one answer per id, in order');
  t.same(results.map((r) => r.ok), [true, true, true, false, false, false]);
  t.same(results.slice(0, 3).map((r) => r.delivery!.state), ['DELIVERED', 'DELIVERED', 'DELIVERED']);
  t.equal(results[0]!.delivery!.ackedAt, firstAck, 'the earlier acknowledgement stands');
  t.equal(results[3]!.problem!.type, 'https://postbud.dev/problems/storage/delivery-not-found', "another provider's delivery is not found");
  t.equal(results[4]!.problem!.type, 'https://postbud.dev/problems/storage/invalid-transition');
  t.equal(results[5]!.problem!.type, 'https://postbud.dev/problems/storage/delivery-not-found');

  const events = await db.selectFrom('message_events').select(['message_id', 'type']).where('type', '=', 'DELIVERED').execute();
  t.same(events.map((e) => e.message_id).sort(), mine.map((d) => d.messageId).sort(), 'one DELIVERED event per acknowledged delivery, none twice');
  const receipts = await db.selectFrom('receipts').select('message_id').where('type', '=', 'DELIVERED').execute();
  t.equal(receipts.length, 3, 'and one receipt each for the sender');
  const jobs = await db.selectFrom('outbox').select('payload').where('queue', '=', 'notification').execute();
  t.equal(jobs.length, 3, 'one alert job each');
  const foreignState = await db.selectFrom('deliveries').select('state').where('id', '=', foreign.id).executeTakeFirstOrThrow();
  t.equal(foreignState.state, 'READY', "the other provider's delivery is untouched");

  const again = await ts.app.inject({ method: 'POST', url: '/v1/deliveries/ack', headers, payload: { ids: mine.map((d) => d.id) } });
  t.same(again.json().results.map((r: { delivery: { ackedAt: string } }) => r.delivery.ackedAt), results.slice(0, 3).map((r) => r.delivery!.ackedAt), 'acknowledging the batch again changes nothing');
  t.equal((await db.selectFrom('message_events').select('seq').where('type', '=', 'DELIVERED').execute()).length, 3);

  const bad = await ts.app.inject({ method: 'POST', url: '/v1/deliveries/ack', headers, payload: { ids: [] } });
  t.equal(bad.statusCode, 400, 'an empty batch is a validation problem');
  t.equal(bad.headers['content-type'], 'application/problem+json; charset=utf-8');
});
