import t from 'tap';
import { sql } from 'kysely';
import { service } from '../../../services/storage/app.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { testService } from '../../helpers/service.js';
import { DIGIPOST, insertProvider, providerCert, seedDelivery, SENDER } from './fixtures.js';

const digipost = providerCert('Digipost');
const DAY = 86_400_000;
// Valid when the mailbox was registered, expired since.
const expired = providerCert('ola mailbox', { notBefore: new Date(Date.now() - 400 * DAY), notAfter: new Date(Date.now() - DAY) });

t.test('one delivery that cannot be enveloped never stops the others', async (t) => {
  const ts = await testService(t, service, { env: { DELIVERY_LEASE_SECONDS: '300' } });
  const db = ts.deps.db.kysely;
  await insertProvider(db, { orgnr: DIGIPOST, certDer: digipost.certDer });
  const headers = { authorization: `Bearer ${await ts.token({ org: DIGIPOST, scope: SCOPES.provider })}` };

  const first = await seedDelivery(ts.deps, { mailboxAddress: 'kari#1' });
  const bad = await seedDelivery(ts.deps, { mailboxAddress: 'ola#expired', personId: '02017012345' });
  await sql`insert into mailboxes (person_id, provider_orgnr, address, certificate, active) values ('02017012345', ${DIGIPOST}, 'ola#expired', ${expired.certDer}, true)`.execute(db);
  const last = await seedDelivery(ts.deps, { mailboxAddress: 'per#3' });

  const list = await ts.app.inject({ method: 'GET', url: '/v1/deliveries?limit=10', headers });
  t.equal(list.statusCode, 200, list.body);
  t.same(list.json().deliveries.map((d: { id: string }) => d.id), [first.id, last.id], 'the good deliveries are listed, in order');

  const row = await db.selectFrom('deliveries').select(['state', 'leased_until']).where('id', '=', bad.id).executeTakeFirstOrThrow();
  t.same(row, { state: 'FAILED', leased_until: null }, 'the bad one is failed, visibly, and holds no lease');
  const leased = await db.selectFrom('deliveries').select('id').where('leased_until', 'is not', null).orderBy('created_at').execute();
  t.same(leased.map((r) => r.id), [first.id, last.id], 'only returned ids are leased');

  const events = await db.selectFrom('message_events').select(['type', 'data']).where('message_id', '=', bad.messageId).orderBy('seq').execute();
  t.same(events.map((e) => e.type), ['SEALED', 'ERROR']);
  t.match(events[1]!.data, { reason: 'CERTIFICATE_UNUSABLE', errorType: 'SERVER', deliveryId: bad.id, providerOrgnr: DIGIPOST, detail: /validity/ });
  const receipts = await db.selectFrom('receipts').select(['type', 'sender_orgnr']).where('message_id', '=', bad.messageId).execute();
  t.same(receipts, [{ type: 'ERROR', sender_orgnr: SENDER }], 'the sender gets an ERROR receipt');

  const metrics = await ts.app.inject({ method: 'GET', url: '/metrics' });
  t.match(metrics.body, /storage_deliveries_undeliverable_total\{reason="CERTIFICATE_UNUSABLE"[^}]*\} 1/, 'operators see it');

  // Acknowledging or downloading the failed one is refused; the next listing is not blocked either.
  t.equal((await ts.app.inject({ method: 'POST', url: `/v1/deliveries/${bad.id}/ack`, headers })).statusCode, 409);
  const next = await seedDelivery(ts.deps, { mailboxAddress: 'liv#4' });
  const again = await ts.app.inject({ method: 'GET', url: '/v1/deliveries?limit=10', headers });
  t.equal(again.statusCode, 200);
  t.same(again.json().deliveries.map((d: { id: string }) => d.id), [next.id]);
});

t.test('an error that may pass leaves the delivery out but releases its lease', async (t) => {
  const ts = await testService(t, service);
  const db = ts.deps.db.kysely;
  await insertProvider(db, { orgnr: DIGIPOST, certDer: digipost.certDer });
  const headers = { authorization: `Bearer ${await ts.token({ org: DIGIPOST, scope: SCOPES.provider })}` };
  const good = await seedDelivery(ts.deps, { mailboxAddress: 'kari#1' });
  const broken = await seedDelivery(ts.deps, { mailboxAddress: 'ola#2' });
  // Its ciphertext is missing (a storage fault): enveloping it fails, but not because of the recipient.
  await db.deleteFrom('package_chunks').where('package_id', '=', broken.sealed.packageId).execute();

  const list = await ts.app.inject({ method: 'GET', url: '/v1/deliveries', headers });
  t.equal(list.statusCode, 200, list.body);
  t.same(list.json().deliveries.map((d: { id: string }) => d.id), [good.id]);
  const row = await db.selectFrom('deliveries').select(['state', 'leased_until']).where('id', '=', broken.id).executeTakeFirstOrThrow();
  t.same(row, { state: 'READY', leased_until: null }, 'still ready, not hidden by a lease');

  // Only the broken one left: the listing reports the fault (problem+json), holding no lease.
  await ts.app.inject({ method: 'POST', url: `/v1/deliveries/${good.id}/ack`, headers });
  const alone = await ts.app.inject({ method: 'GET', url: '/v1/deliveries', headers });
  t.equal(alone.statusCode, 500);
  t.match(alone.headers['content-type'], /^application\/problem\+json/);
  t.equal((await db.selectFrom('deliveries').select('leased_until').where('id', '=', broken.id).executeTakeFirstOrThrow()).leased_until, null);
});

t.test('a fault found while the listing envelopes a page leaves that delivery out, unleased, and lists the others', async (t) => {
  const ts = await testService(t, service);
  const db = ts.deps.db.kysely;
  await insertProvider(db, { orgnr: DIGIPOST, certDer: digipost.certDer });
  const headers = { authorization: `Bearer ${await ts.token({ org: DIGIPOST, scope: SCOPES.provider })}` };
  const first = await seedDelivery(ts.deps, { mailboxAddress: 'kari#1' });
  const broken = await seedDelivery(ts.deps, { mailboxAddress: 'ola#2' });
  const last = await seedDelivery(ts.deps, { mailboxAddress: 'per#3' });
  // Its data key is wrapped under a key-encryption key this hub does not have (a keyring fault).
  await db.updateTable('packages').set({ kek_id: 'retired-kek' }).where('id', '=', broken.sealed.packageId).execute();

  const list = await ts.app.inject({ method: 'GET', url: '/v1/deliveries', headers });
  t.equal(list.statusCode, 200, list.body);
  const listed = list.json().deliveries as { id: string; fingerprint: string }[];
  t.same(listed.map((d) => d.id), [first.id, last.id], 'the others are listed, in order');
  const rows = await db.selectFrom('deliveries').select(['id', 'state', 'leased_until', 'fingerprint']).orderBy('created_at').execute();
  t.same(rows.map((r) => [r.id, r.state, r.leased_until !== null]), [[first.id, 'READY', true], [broken.id, 'READY', false], [last.id, 'READY', true]], 'only the listed ones are leased');
  t.same(rows.filter((r) => r.fingerprint).map((r) => [r.id, r.fingerprint!.toString('hex')]), listed.map((d) => [d.id, d.fingerprint]), 'their envelopes are stored with the lease, as listed');
  // The download serves the envelope stored with the lease.
  const pkg = await ts.app.inject({ method: 'GET', url: `/v1/deliveries/${first.id}/package`, headers });
  t.equal(pkg.statusCode, 200);
  t.equal(pkg.headers.etag, `"${listed[0]!.fingerprint}"`);

  // Nothing else to list: the fault is reported (problem+json), no lease taken.
  await ts.app.inject({ method: 'POST', url: '/v1/deliveries/ack', headers, payload: { ids: [first.id, last.id] } });
  const alone = await ts.app.inject({ method: 'GET', url: '/v1/deliveries', headers });
  t.equal(alone.statusCode, 500);
  t.equal((await db.selectFrom('deliveries').select('leased_until').where('id', '=', broken.id).executeTakeFirstOrThrow()).leased_until, null);
});
