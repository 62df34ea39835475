import t from 'tap';
import { sql } from 'kysely';
import { service } from '../../../services/ingestion/app.js';
import { expireDelivery } from '../../../services/ingestion/expiry.js';
import { readdress } from '../../../services/storage/deliveries.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { findMessage } from '../../../shared/messages/messages.js';
import { storageContext } from '../../../shared/storage/context.js';
import { testService } from '../../helpers/service.js';
import { DIGIPOST, EBOKS, letter, multipart, newKey, PDF, PERSONS, PRINT, PRINTER, seedRegistry, SENDER } from './fixtures.js';

t.test('status names where the letter is: after re-addressing and after the print fallback', async (t) => {
  const svc = await testService(t, service);
  const db = svc.deps.db.kysely;
  const storage = storageContext(svc.deps);
  await seedRegistry(db);
  const auth = { authorization: `Bearer ${await svc.token({ org: SENDER, scope: SCOPES.send })}` };
  const send = async (over: Record<string, unknown> = {}) => {
    const b = multipart(letter(over), [{ name: 'vedtak.pdf', content: PDF(1000) }]);
    const res = await svc.app.inject({ method: 'POST', url: '/v1/messages', headers: { ...auth, 'content-type': b.contentType, 'idempotency-key': newKey() }, payload: b.payload });
    t.equal(res.statusCode, 201, res.body);
    return res.json().id as string;
  };
  const status = async (id: string) => (await svc.app.inject({ method: 'GET', url: `/v1/messages/${id}`, headers: auth })).json();
  const listed = async (id: string) => ((await svc.app.inject({ method: 'GET', url: '/v1/messages?limit=100', headers: auth })).json().items as { id: string }[]).find((m) => m.id === id);

  const id = await send({ print: PRINT });
  t.match(await status(id), { route: 'DIGITAL', provider: { orgnr: DIGIPOST, name: 'Digipost' } });

  // The citizen switches from Digipost to e-Boks (the registry's write), and storage re-addresses.
  await sql`update mailboxes set active = false where person_id = ${PERSONS.digital}`.execute(db);
  await sql`insert into mailboxes (person_id, provider_orgnr, address, active) values (${PERSONS.digital}, ${EBOKS}, 'ola-eboks', true)`.execute(db);
  t.equal(await readdress(storage, { personId: PERSONS.digital }), 1);
  const moved = { route: 'DIGITAL', provider: { orgnr: EBOKS, name: 'e-Boks' } };
  t.match(await status(id), moved, 'GET /v1/messages/{id} names e-Boks');
  t.match(await listed(id), moved, 'the list names e-Boks');
  t.match(await findMessage(db, id), { route: 'DIGITAL', providerOrgnr: EBOKS }, 'what other services read too');

  // Not acknowledged at e-Boks in time: the print fallback.
  const delivery = await db.selectFrom('deliveries').select('id').where('message_id', '=', id).executeTakeFirstOrThrow();
  t.equal(await expireDelivery(svc.deps.db, storage, { messageId: id, deliveryId: delivery.id }, 60), 'print');
  const printed = { route: 'PRINT', provider: { orgnr: PRINTER, name: 'Test Print' } };
  t.match(await status(id), printed);
  t.match(await listed(id), printed);
  t.match(await findMessage(db, id), { route: 'PRINT', providerOrgnr: PRINTER });
});
