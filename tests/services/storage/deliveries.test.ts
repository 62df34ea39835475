import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import t, { type Test } from 'tap';
import { flattenedVerify, createLocalJWKSet, compactVerify, type JSONWebKeySet } from 'jose';
import { service } from '../../../services/storage/app.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { ASICE_MIMETYPE, type Manifest } from '../../../shared/crypto/asice.js';
import { decryptPackage } from '../../../shared/storage/packages.js';
import { testService } from '../../helpers/service.js';
import { signWithDevKey, consumer } from '../../helpers/tokens.js';
import { DEV_ISSUER } from '../../../shared/auth/dev-issuer.js';
import { collect, DIGIPOST, EBOKS, insertProvider, opensslDecrypt, PRINT_INSTRUCTIONS, PRINTER, providerCert, seedDelivery, unzip } from './fixtures.js';

const digipost = providerCert('Digipost');
const eboks = providerCert('e-Boks');
const printer = providerCert('Printer');

async function setup(t: Test, env: Record<string, string> = {}) {
  const ts = await testService(t, service, { env });
  await insertProvider(ts.deps.db.kysely, { orgnr: DIGIPOST, certDer: digipost.certDer });
  await insertProvider(ts.deps.db.kysely, { orgnr: EBOKS, certDer: eboks.certDer });
  await insertProvider(ts.deps.db.kysely, { orgnr: PRINTER, kind: 'print', certDer: printer.certDer });
  const auth = async (org: string, scope: string = SCOPES.provider) => ({ authorization: `Bearer ${await ts.token({ org, scope } as never)}` });
  return { ...ts, auth };
}

t.test('a provider pulls a package that openssl decrypts to the sealed ZIP', async (t) => {
  const ts = await setup(t);
  const seeded = await seedDelivery(ts.deps);
  const headers = await ts.auth(DIGIPOST);

  const list = await ts.app.inject({ method: 'GET', url: '/v1/deliveries?limit=10', headers });
  t.equal(list.statusCode, 200);
  const [item] = list.json().deliveries;
  t.match(item, {
    id: seeded.id,
    messageId: seeded.messageId,
    route: 'DIGITAL',
    personId: seeded.personId,
    mailboxAddress: seeded.mailboxAddress,
    title: 'Vedtak om tilskudd',
    securityLevel: 4,
    fingerprint: /^[0-9a-f]{64}$/,
  });
  t.notOk('print' in item, 'digital deliveries carry no print instructions');

  const pkg = await ts.app.inject({ method: 'GET', url: `/v1/deliveries/${seeded.id}/package`, headers });
  t.equal(pkg.statusCode, 200);
  t.match(pkg.headers['content-type'], /^application\/pkcs7-mime/);
  t.equal(Number(pkg.headers['content-length']), pkg.rawPayload.length);
  t.equal(item.size, pkg.rawPayload.length, 'the listed size is the download size');
  t.equal(pkg.headers.etag, `"${item.fingerprint}"`);
  t.equal(createHash('sha256').update(pkg.rawPayload).digest('hex'), item.fingerprint, 'the fingerprint is SHA-256 of the exact bytes');

  const zip = await opensslDecrypt(t, pkg.rawPayload, digipost);
  t.same(zip, await collect(decryptPackage(seeded.ctx, seeded.sealed.packageId)), 'openssl gives back the sealed ZIP byte for byte');
  t.equal(zip.length, seeded.sealed.zipSize);

  const entries = await unzip(zip);
  t.same(entries.map((e) => e.name), ['mimetype', 'vedtak.pdf', 'vedlegg.txt', 'manifest.json', 'META-INF/manifest.jws']);
  t.equal(entries[0]!.compressionMethod, 0, 'mimetype is stored');
  t.equal(entries[0]!.data.toString(), ASICE_MIMETYPE);
  t.equal(zip.subarray(30, 38).toString(), 'mimetype', 'mimetype is the very first entry');

  const manifestJson = entries.find((e) => e.name === 'manifest.json')!.data;
  const manifest = JSON.parse(manifestJson.toString()) as Manifest;
  t.match(manifest, {
    messageId: seeded.messageId,
    recipient: { personId: seeded.personId },
    title: 'Vedtak om tilskudd',
    language: 'nb',
    securityLevel: 4,
    openReceipt: true,
  });
  for (const doc of seeded.documents) {
    const entry = entries.find((e) => e.name === doc.name)!;
    const listed = manifest.documents.find((d) => d.name === doc.name)!;
    t.same(entry.data, doc.bytes, `${doc.name} is intact`);
    t.equal(listed.sha256, createHash('sha256').update(entry.data).digest('hex'), `${doc.name} matches its SHA-256`);
    t.equal(listed.size, doc.bytes.length);
    t.equal(listed.mime, doc.mime);
  }

  const jwks = (await ts.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json() as JSONWebKeySet;
  t.ok(jwks.keys.length >= 1 && jwks.keys.every((k) => k.kid && k.alg === 'ES256'));
  const jws = entries.find((e) => e.name === 'META-INF/manifest.jws')!.data.toString();
  const [h, p, s] = jws.split('.');
  t.equal(p, '', 'detached payload');
  const verified = await compactVerify(`${h}.${manifestJson.toString('base64url')}.${s}`, createLocalJWKSet(jwks));
  t.same(Buffer.from(verified.payload), manifestJson, 'the manifest JWS verifies against the published JWKS');
  await t.rejects(
    flattenedVerify({ protected: h!, payload: Buffer.from(manifestJson.toString().replace('Vedtak', 'Vxdtak')).toString('base64url'), signature: s! }, createLocalJWKSet(jwks)),
    'a changed manifest fails',
  );

  const again = await ts.app.inject({ method: 'GET', url: `/v1/deliveries/${seeded.id}/package`, headers: { ...headers, 'if-none-match': pkg.headers.etag as string } });
  t.equal(again.statusCode, 304);
  const second = await ts.app.inject({ method: 'GET', url: `/v1/deliveries/${seeded.id}/package`, headers });
  t.same(second.rawPayload, pkg.rawPayload, 'a second download is the same bytes');
});

t.test('a provider cannot reach another provider\u2019s delivery', async (t) => {
  const ts = await setup(t);
  const seeded = await seedDelivery(ts.deps);
  const other = await ts.auth(EBOKS);
  const list = await ts.app.inject({ method: 'GET', url: '/v1/deliveries', headers: other });
  t.same(list.json().deliveries, [], 'not listed');
  const pkg = await ts.app.inject({ method: 'GET', url: `/v1/deliveries/${seeded.id}/package`, headers: other });
  t.equal(pkg.statusCode, 404, 'no download');
  t.equal(pkg.json().code, 'POSTBUD_STORAGE_DELIVERY_NOT_FOUND');
  const ack = await ts.app.inject({ method: 'POST', url: `/v1/deliveries/${seeded.id}/ack`, headers: other });
  t.equal(ack.statusCode, 404, 'no ack');
  const ev = await ts.app.inject({ method: 'POST', url: `/v1/deliveries/${seeded.id}/events`, headers: other, payload: { type: 'FAILED', reason: 'x' } });
  t.equal(ev.statusCode, 404, 'no event');
  const row = await ts.deps.db.kysely.selectFrom('deliveries').select(['state', 'leased_until']).where('id', '=', seeded.id).executeTakeFirstOrThrow();
  t.same(row, { state: 'READY', leased_until: null }, 'nothing changed');

  const url = `/v1/deliveries/${seeded.id}/package`;
  const noScope = await ts.app.inject({ method: 'GET', url, headers: await ts.auth(DIGIPOST, SCOPES.send) });
  t.equal(noScope.statusCode, 403, 'a token without postbud:provider');
  t.equal(noScope.json().code, 'POSTBUD_FORBIDDEN_SCOPE');
  const citizen = await ts.app.inject({ method: 'GET', url: '/v1/deliveries', headers: { authorization: `Bearer ${await ts.token({ pid: seeded.personId, acr: 'idporten-loa-high' } as never)}` } });
  t.equal(citizen.statusCode, 403, 'a citizen token');
  const expired = await signWithDevKey((ts.deps as typeof ts.deps & { dataDir: string }).dataDir, {
    iss: DEV_ISSUER,
    aud: ts.config.AUTH_AUDIENCE,
    exp: Math.floor(Date.now() / 1000) - 60,
    scope: SCOPES.provider,
    consumer: consumer(DIGIPOST),
  });
  const exp = await ts.app.inject({ method: 'POST', url: `/v1/deliveries/${seeded.id}/ack`, headers: { authorization: `Bearer ${expired}` } });
  t.equal(exp.statusCode, 401, 'an expired token');
  t.equal(exp.json().code, 'POSTBUD_TOKEN_EXPIRED');
  const none = await ts.app.inject({ method: 'POST', url: `/v1/deliveries/${seeded.id}/events`, payload: { type: 'FAILED', reason: 'x' } });
  t.equal(none.statusCode, 401, 'no token');
  const bad = await ts.app.inject({ method: 'GET', url: '/v1/deliveries/not-a-uuid/package', headers: await ts.auth(DIGIPOST) });
  t.equal(bad.statusCode, 400);
});

t.test('leases: listed once, offered again when not acknowledged, never after ack', async (t) => {
  const ts = await setup(t, { DELIVERY_LEASE_SECONDS: '600' });
  const a = await seedDelivery(ts.deps);
  const b = await seedDelivery(ts.deps);
  const headers = await ts.auth(DIGIPOST);
  const list = async (limit = 10) => (await ts.app.inject({ method: 'GET', url: `/v1/deliveries?limit=${limit}`, headers })).json().deliveries.map((d: { id: string }) => d.id);

  t.same(await list(1), [a.id], 'oldest first, limit respected');
  t.same(await list(), [b.id], 'a leased delivery is not listed again');
  t.same(await list(), [], 'both leased');
  const ack = await ts.app.inject({ method: 'POST', url: `/v1/deliveries/${a.id}/ack`, headers });
  t.equal(ack.statusCode, 200);
  t.match(ack.json(), { id: a.id, messageId: a.messageId, state: 'DELIVERED', ackedAt: String });
  const again = await ts.app.inject({ method: 'POST', url: `/v1/deliveries/${a.id}/ack`, headers });
  t.same(again.json(), ack.json(), 'acknowledging again answers the same');
  // Control point: the leases run out now (as DELIVERY_LEASE_SECONDS later would), not after a sleep.
  await sql`update deliveries set leased_until = now() - interval '1 millisecond' where id in (${a.id}, ${b.id})`.execute(ts.deps.db.kysely);
  t.same(await list(), [b.id], 'the unacknowledged one comes back after its lease, the acknowledged one never');

  const events = await ts.deps.db.kysely.selectFrom('message_events').select('type').where('message_id', '=', a.messageId).orderBy('seq').execute();
  t.same(events.map((e) => e.type), ['SEALED', 'DELIVERED'], 'one DELIVERED event despite two acks');
  const receipts = await ts.deps.db.kysely.selectFrom('receipts').select(['type', 'sender_orgnr']).where('message_id', '=', a.messageId).execute();
  t.same(receipts, [{ type: 'DELIVERED', sender_orgnr: '974760673' }]);
  const jobs = await ts.deps.db.kysely.selectFrom('outbox').select(['queue', 'job_name', 'payload']).execute();
  t.same(jobs, [{ queue: 'notification', job_name: 'delivery-event', payload: { messageId: a.messageId, type: 'DELIVERED' } }], 'alerts are told, in the same transaction');
});

t.test('digital events: OPENED after DELIVERED, FAILED, and what cannot follow what', async (t) => {
  const ts = await setup(t);
  const d = await seedDelivery(ts.deps);
  const headers = await ts.auth(DIGIPOST);
  const post = (payload: unknown, id = d.id) => ts.app.inject({ method: 'POST', url: `/v1/deliveries/${id}/events`, headers, payload: payload as object });
  const opened = { type: 'OPENED', at: new Date().toISOString(), securityLevel: 4 };

  t.equal((await post(opened)).statusCode, 409, 'not opened before it is delivered');
  t.equal((await post({ type: 'PRINTED', at: new Date().toISOString() })).statusCode, 409, 'PRINTED is for print');
  t.equal((await post({ type: 'OPENED', at: 'yesterday', securityLevel: 4 })).statusCode, 400);
  t.equal((await post({ ...opened, extra: 1 })).statusCode, 400, 'no unknown fields');
  t.equal((await post({ type: 'LOST' })).statusCode, 400);
  await ts.app.inject({ method: 'POST', url: `/v1/deliveries/${d.id}/ack`, headers });
  const res = await post(opened);
  t.equal(res.statusCode, 200);
  t.equal(res.json().state, 'OPENED');
  t.equal((await post(opened)).json().state, 'OPENED', 'reporting it again is a no-op');
  t.equal((await post({ type: 'FAILED', reason: 'mailbox closed' })).statusCode, 409, 'no failure after opening');
  t.equal((await ts.app.inject({ method: 'POST', url: `/v1/deliveries/${d.id}/ack`, headers })).json().state, 'OPENED', 'ack after open is harmless');

  const events = await ts.deps.db.kysely.selectFrom('message_events').select(['type', 'data']).where('message_id', '=', d.messageId).orderBy('seq').execute();
  t.same(events.map((e) => e.type), ['SEALED', 'DELIVERED', 'OPENED']);
  t.match(events[2]!.data, { securityLevel: 4, at: opened.at, providerOrgnr: DIGIPOST });
  const jobs = await ts.deps.db.kysely.selectFrom('outbox').select('payload').execute();
  t.same(jobs.map((j) => (j.payload as { type: string }).type), ['DELIVERED', 'OPENED']);

  const f = await seedDelivery(ts.deps);
  const failed = await post({ type: 'FAILED', reason: 'mailbox closed' }, f.id);
  t.equal(failed.json().state, 'FAILED');
  t.equal((await ts.app.inject({ method: 'POST', url: `/v1/deliveries/${f.id}/ack`, headers })).statusCode, 409, 'a failed delivery cannot be acknowledged');
  const receipt = await ts.deps.db.kysely.selectFrom('receipts').select('type').where('message_id', '=', f.messageId).executeTakeFirstOrThrow();
  t.equal(receipt.type, 'ERROR', 'the sender gets an ERROR receipt');
  t.same((await ts.app.inject({ method: 'GET', url: '/v1/deliveries', headers })).json().deliveries, [], 'failed deliveries are not offered');
});

t.test('print: instructions in the listing, PRINT_ACCEPTED, PRINTED, RETURNED', async (t) => {
  const ts = await setup(t);
  const d = await seedDelivery(ts.deps, { route: 'PRINT' });
  const headers = await ts.auth(PRINTER);
  const [item] = (await ts.app.inject({ method: 'GET', url: '/v1/deliveries', headers })).json().deliveries;
  t.match(item, { id: d.id, route: 'PRINT', mailboxAddress: null, print: PRINT_INSTRUCTIONS });
  const pkg = await ts.app.inject({ method: 'GET', url: `/v1/deliveries/${d.id}/package`, headers });
  const entries = await unzip(await opensslDecrypt(t, pkg.rawPayload, printer));
  const manifest = JSON.parse(entries.find((e) => e.name === 'manifest.json')!.data.toString()) as Record<string, unknown>;
  t.notOk('print' in manifest, 'routing is not in the signed manifest; it is in the signed routing statement');
  const jwks = createLocalJWKSet((await ts.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json() as JSONWebKeySet);
  const routing = JSON.parse(Buffer.from((await compactVerify(item.routing, jwks)).payload).toString());
  t.match(routing, { deliveryId: d.id, route: 'PRINT', providerOrgnr: PRINTER, mailboxAddress: null, print: PRINT_INSTRUCTIONS });

  const post = (payload: object) => ts.app.inject({ method: 'POST', url: `/v1/deliveries/${d.id}/events`, headers, payload });
  t.equal((await post({ type: 'OPENED', at: new Date().toISOString(), securityLevel: 3 })).statusCode, 409, 'print is not opened');
  t.equal((await ts.app.inject({ method: 'POST', url: `/v1/deliveries/${d.id}/ack`, headers })).json().state, 'PRINT_ACCEPTED');
  t.equal((await post({ type: 'PRINTED', at: new Date().toISOString() })).json().state, 'PRINTED');
  t.equal((await post({ type: 'RETURNED', at: new Date().toISOString(), reason: 'unknown address' })).json().state, 'RETURNED');
  const receipts = await ts.deps.db.kysely.selectFrom('receipts').select('type').where('message_id', '=', d.messageId).orderBy('event_seq').execute();
  t.same(receipts.map((r) => r.type), ['PRINT_ACCEPTED', 'RETURNED']);
  t.equal(await ts.deps.db.kysely.selectFrom('outbox').select('id').execute().then((r) => r.length), 0, 'print does not schedule alerts');
});

t.test('a package larger than one chunk streams to the provider intact', async (t) => {
  const ts = await setup(t);
  const big = (await import('node:crypto')).randomBytes(2_500_000);
  const d = await seedDelivery(ts.deps, { documents: [{ name: 'stor.pdf', mime: 'application/pdf', bytes: big }] });
  t.ok(d.sealed.chunks > 1, `${d.sealed.chunks} chunks`);
  const headers = await ts.auth(DIGIPOST);
  const pkg = await ts.app.inject({ method: 'GET', url: `/v1/deliveries/${d.id}/package`, headers });
  t.equal(pkg.statusCode, 200);
  t.equal(Number(pkg.headers['content-length']), pkg.rawPayload.length);
  const entries = await unzip(await opensslDecrypt(t, pkg.rawPayload, digipost));
  t.same(entries.find((e) => e.name === 'stor.pdf')!.data, big);
});
