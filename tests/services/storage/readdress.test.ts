import t from 'tap';
import { sql } from 'kysely';
import { service } from '../../../services/storage/app.js';
import { readdress } from '../../../services/storage/deliveries.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { enqueue, relayBatch } from '../../../shared/outbox/outbox.js';
import { testService } from '../../helpers/service.js';
import { DIGIPOST, EBOKS, insertProvider, opensslDecrypt, providerCert, seedDelivery, collect } from './fixtures.js';
import { decryptPackage } from '../../../shared/storage/packages.js';
import { waitFor } from '../../helpers/wait.js';

const digipost = providerCert('Digipost');
const eboks = providerCert('e-Boks');
const PERSON = '01017012345';

t.test('switching mailbox re-addresses pending deliveries to the new provider', async (t) => {
  const ts = await testService(t, service);
  const db = ts.deps.db.kysely;
  await insertProvider(db, { orgnr: DIGIPOST, certDer: digipost.certDer });
  await insertProvider(db, { orgnr: EBOKS, certDer: eboks.certDer });
  await sql`insert into persons (person_id) values (${PERSON})`.execute(db);
  await sql`insert into mailboxes (person_id, provider_orgnr, address, active) values (${PERSON}, ${DIGIPOST}, 'ola#1', true)`.execute(db);
  const auth = async (org: string) => ({ authorization: `Bearer ${await ts.token({ org, scope: SCOPES.provider } as never)}` });
  const dp = await auth(DIGIPOST);
  const eb = await auth(EBOKS);

  const pending = await seedDelivery(ts.deps, { personId: PERSON, mailboxAddress: 'ola#1' });
  const acked = await seedDelivery(ts.deps, { personId: PERSON, mailboxAddress: 'ola#1' });
  const someoneElse = await seedDelivery(ts.deps, { personId: '02028012345', mailboxAddress: 'kari#1' });
  const listed = (await ts.app.inject({ method: 'GET', url: '/v1/deliveries', headers: dp })).json().deliveries;
  t.equal(listed.length, 3, 'Digipost has leased all three and made their envelopes');
  const oldFingerprint = listed.find((d: { id: string }) => d.id === pending.id).fingerprint;
  await ts.app.inject({ method: 'POST', url: `/v1/deliveries/${acked.id}/ack`, headers: dp });

  t.equal(await readdress(pending.ctx, { personId: PERSON }), 0, 'nothing moves while the mailbox is where it was');

  // The registry switches the person to e-Boks and tells storage through the outbox.
  await sql`update mailboxes set active = false where person_id = ${PERSON}`.execute(db);
  await sql`insert into mailboxes (person_id, provider_orgnr, address, active) values (${PERSON}, ${EBOKS}, 'ola.nordmann@eboks', true)`.execute(db);
  await enqueue(db, { queue: 'storage', name: 'mailbox-changed', data: { personId: PERSON, providerOrgnr: EBOKS, mailboxAddress: 'ola.nordmann@eboks' } });
  await enqueue(db, { queue: 'storage', name: 'something-else', data: {} });
  const background = await service.startBackground!(ts.deps);
  t.teardown(() => background.stop());
  await relayBatch(db, ts.deps.queues);
  await waitFor('the delivery re-addressed to e-Boks', async () => (await db.selectFrom('deliveries').select('provider_orgnr').where('id', '=', pending.id).executeTakeFirstOrThrow()).provider_orgnr === EBOKS, 60_000);

  const ebList = (await ts.app.inject({ method: 'GET', url: '/v1/deliveries', headers: eb })).json().deliveries;
  t.same(ebList.map((d: { id: string }) => d.id), [pending.id], 'e-Boks gets the pending one at once (the old lease is dropped)');
  t.equal(ebList[0].mailboxAddress, 'ola.nordmann@eboks');
  t.not(ebList[0].fingerprint, oldFingerprint, 'a new envelope for the new certificate');
  const pkg = await ts.app.inject({ method: 'GET', url: `/v1/deliveries/${pending.id}/package`, headers: eb });
  t.equal(pkg.statusCode, 200);
  t.same(await opensslDecrypt(t, pkg.rawPayload, eboks), await collect(decryptPackage(pending.ctx, pending.sealed.packageId)), 'e-Boks decrypts it with its own key');
  await t.rejects(opensslDecrypt(t, pkg.rawPayload, digipost), 'Digipost\u2019s key no longer opens it');

  t.equal((await ts.app.inject({ method: 'GET', url: `/v1/deliveries/${pending.id}/package`, headers: dp })).statusCode, 404, 'Digipost no longer sees it');
  t.equal((await ts.app.inject({ method: 'POST', url: `/v1/deliveries/${pending.id}/ack`, headers: dp })).statusCode, 404, 'nor can it acknowledge it');
  t.equal((await ts.app.inject({ method: 'GET', url: `/v1/deliveries/${acked.id}/package`, headers: dp })).statusCode, 200, 'the acknowledged one stays with Digipost');
  const other = await db.selectFrom('deliveries').select('provider_orgnr').where('id', '=', someoneElse.id).executeTakeFirstOrThrow();
  t.equal(other.provider_orgnr, DIGIPOST, 'other persons are untouched');

  t.equal(await readdress(pending.ctx, { personId: PERSON }), 0, 'a repeated job changes nothing');
  const events = await db.selectFrom('message_events').select(['type', 'data']).where('message_id', '=', pending.messageId).orderBy('seq').execute();
  t.same(events.map((e) => e.type), ['SEALED', 'REROUTED']);
  t.match(events[1]!.data, { fromProviderOrgnr: DIGIPOST, toProviderOrgnr: EBOKS });

  // Mailbox closed: nowhere digital to go, so pending deliveries stay put.
  await sql`update mailboxes set active = false where person_id = ${PERSON}`.execute(db);
  t.equal(await readdress(pending.ctx, { personId: PERSON }), 0);
});

t.test('a mailbox certificate of its own is used instead of the provider\u2019s', async (t) => {
  const ts = await testService(t, service);
  const db = ts.deps.db.kysely;
  const own = providerCert('Own mailbox key');
  await insertProvider(db, { orgnr: DIGIPOST, certDer: digipost.certDer });
  await sql`insert into mailboxes (person_id, provider_orgnr, address, active, certificate) values (${PERSON}, ${DIGIPOST}, 'ola#own', true, ${own.certDer})`.execute(db);
  const d = await seedDelivery(ts.deps, { personId: PERSON, mailboxAddress: 'ola#own' });
  const headers = { authorization: `Bearer ${await ts.token({ org: DIGIPOST, scope: SCOPES.provider } as never)}` };
  const pkg = await ts.app.inject({ method: 'GET', url: `/v1/deliveries/${d.id}/package`, headers });
  t.ok((await opensslDecrypt(t, pkg.rawPayload, own)).length > 0);

  // A certificate renewal makes a new envelope on the next pull; a broken one is refused clearly.
  const renewed = providerCert('Renewed');
  await sql`update mailboxes set certificate = ${renewed.certDer}`.execute(db);
  const pkg2 = await ts.app.inject({ method: 'GET', url: `/v1/deliveries/${d.id}/package`, headers });
  t.ok((await opensslDecrypt(t, pkg2.rawPayload, renewed)).length > 0);
  const expired = providerCert('Expired', { notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
  await sql`update mailboxes set certificate = ${expired.certDer}`.execute(db);
  const refused = await ts.app.inject({ method: 'GET', url: `/v1/deliveries/${d.id}/package`, headers });
  t.equal(refused.statusCode, 409);
  t.equal(refused.json().code, 'POSTBUD_STORAGE_CERTIFICATE_UNUSABLE');

  await sql`update providers set status = 'suspended'`.execute(db);
  const suspended = await ts.app.inject({ method: 'GET', url: '/v1/deliveries', headers });
  t.equal(suspended.statusCode, 403);
  t.equal(suspended.json().code, 'POSTBUD_STORAGE_PROVIDER_SUSPENDED');
});
