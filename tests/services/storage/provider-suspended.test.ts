import t from 'tap';
import { sql } from 'kysely';
import { service } from '../../../services/storage/app.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { documentedOperations, fillPath } from '../../helpers/routes.js';
import { testService } from '../../helpers/service.js';
import { DIGIPOST, insertProvider, providerCert, seedDelivery } from './fixtures.js';

const digipost = providerCert('Digipost');

t.test('a suspended provider is refused on every provider route, reads and writes alike', async (t) => {
  const ts = await testService(t, service);
  const db = ts.deps.db.kysely;
  await insertProvider(db, { orgnr: DIGIPOST, certDer: digipost.certDer });
  const headers = { authorization: `Bearer ${await ts.token({ org: DIGIPOST, scope: SCOPES.provider })}` };
  const d = await seedDelivery(ts.deps);
  // Listed (leased, enveloped) while active, so ack and events would otherwise succeed.
  t.equal((await ts.app.inject({ method: 'GET', url: '/v1/deliveries', headers })).json().deliveries.length, 1);
  await sql`update providers set status = 'suspended' where orgnr = ${DIGIPOST}`.execute(db);

  const bodies: Record<string, object> = {
    '/v1/deliveries/{id}/events': { type: 'FAILED', reason: 'would fail it' },
  };
  const operations = documentedOperations(ts.app, '/v1/deliveries');
  t.ok(operations.length >= 4, 'list, package, ack and events are documented');
  for (const op of operations) {
    const res = await ts.app.inject({ method: op.method, url: fillPath(op.path, { id: d.id }), headers, ...(op.method === 'GET' ? {} : { payload: bodies[op.path] ?? {} }) });
    t.equal(res.statusCode, 403, `${op.method} ${op.path}`);
    t.match(res.headers['content-type'], /^application\/problem\+json/);
    t.equal(res.json().type, 'https://postbud.dev/problems/storage/provider-suspended', `${op.method} ${op.path}`);
  }
  const row = await db.selectFrom('deliveries').select(['state', 'acked_at']).where('id', '=', d.id).executeTakeFirstOrThrow();
  t.same(row, { state: 'READY', acked_at: null }, 'nothing was acknowledged or reported');
  const events = await db.selectFrom('message_events').select('type').where('message_id', '=', d.messageId).orderBy('seq').execute();
  t.same(events.map((e) => e.type), ['SEALED'], 'no event was appended');

  await sql`update providers set status = 'active' where orgnr = ${DIGIPOST}`.execute(db);
  const ack = await ts.app.inject({ method: 'POST', url: `/v1/deliveries/${d.id}/ack`, headers });
  t.equal(ack.json().state, 'DELIVERED', 'reactivated, it acknowledges again');
});
