/**
 * The provider pull's cheaper paths (services/storage/deliveries.ts), tried against what they
 * skip: the listing's fingerprint hashed by Postgres instead of Node, the download answering
 * from the stored envelope without reading the certificate, and a token the verifier has
 * already seen. Each must give the same bytes, and refuse the same requests, as before.
 */
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import t, { type Test } from 'tap';
import { service } from '../../../services/storage/app.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { DEV_ISSUER } from '../../../shared/auth/dev-issuer.js';
import { decryptPackage } from '../../../shared/storage/packages.js';
import { testService } from '../../helpers/service.js';
import { consumer, signWithDevKey } from '../../helpers/tokens.js';
import { collect, DIGIPOST, EBOKS, insertProvider, opensslDecrypt, providerCert, seedDelivery } from './fixtures.js';

const digipost = providerCert('Digipost');
const eboks = providerCert('e-Boks');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function setup(t: Test) {
  const ts = await testService(t, service);
  await insertProvider(ts.deps.db.kysely, { orgnr: DIGIPOST, certDer: digipost.certDer });
  await insertProvider(ts.deps.db.kysely, { orgnr: EBOKS, certDer: eboks.certDer });
  const headers = { authorization: `Bearer ${await ts.token({ org: DIGIPOST, scope: SCOPES.provider })}` };
  const download = (id: string, h: Record<string, string> = headers) => ts.app.inject({ method: 'GET', url: `/v1/deliveries/${id}/package`, headers: h });
  const list = async (limit = 50) => {
    const res = await ts.app.inject({ method: 'GET', url: `/v1/deliveries?limit=${limit}`, headers });
    t.equal(res.statusCode, 200);
    return res.json().deliveries as { id: string; size: number; fingerprint: string }[];
  };
  return { ...ts, headers, download, list };
}

t.test('a page of mixed deliveries: every listed fingerprint and size is that of the bytes downloaded', async (t) => {
  const ts = await setup(t);
  const small = [await seedDelivery(ts.deps), await seedDelivery(ts.deps), await seedDelivery(ts.deps)];
  const big = await seedDelivery(ts.deps, { documents: [{ name: 'stor.pdf', mime: 'application/pdf', bytes: (await import('node:crypto')).randomBytes(2_500_000) }] });
  t.ok(big.sealed.chunks > 1, 'one package of several chunks (enveloped after the lease)');
  // Downloaded before any listing: its envelope is made by the download, and the listing keeps it.
  const early = await seedDelivery(ts.deps);
  const first = await ts.download(early.id);
  t.equal(first.statusCode, 200);

  const listed = await ts.list();
  t.same(listed.map((d) => d.id).sort(), [...small, big, early].map((d) => d.id).sort(), 'all five listed');
  for (const d of listed) {
    const pkg = await ts.download(d.id);
    t.equal(pkg.statusCode, 200);
    t.equal(pkg.rawPayload.length, d.size, 'size');
    t.equal(sha256(pkg.rawPayload), d.fingerprint, 'the fingerprint is SHA-256 of the exact bytes');
    t.equal(pkg.headers.etag, `"${d.fingerprint}"`);
    const again = await ts.download(d.id);
    t.same(again.rawPayload, pkg.rawPayload, 'the stored envelope is served again, byte for byte');
  }
  t.equal(listed.find((d) => d.id === early.id)!.fingerprint, sha256(first.rawPayload), 'the envelope the download made is the one listed');
  const row = await ts.deps.db.kysely.selectFrom('deliveries').select(['fingerprint', 'envelope_header']).where('id', '=', small[0]!.id).executeTakeFirstOrThrow();
  const pkg = await ts.download(small[0]!.id);
  t.equal(row.fingerprint!.toString('hex'), sha256(pkg.rawPayload), 'the stored fingerprint too');
  t.same(pkg.rawPayload.subarray(0, row.envelope_header!.length), row.envelope_header, 'the bytes start with the stored header');
  t.same(await opensslDecrypt(t, pkg.rawPayload, digipost), await collect(decryptPackage(small[0]!.ctx, small[0]!.sealed.packageId)), 'and openssl opens them');
});

t.test('a certificate changed after the listing: the download wraps for the new one, never serves the old envelope', async (t) => {
  const ts = await setup(t);
  const d = await seedDelivery(ts.deps);
  const [item] = await ts.list();
  t.equal((await ts.download(d.id)).statusCode, 200);

  const rotated = providerCert('Digipost 2026');
  await sql`update providers set certificate = ${rotated.certDer} where orgnr = ${DIGIPOST}`.execute(ts.deps.db.kysely);
  const pkg = await ts.download(d.id);
  t.equal(pkg.statusCode, 200);
  t.not(pkg.headers.etag, `"${item!.fingerprint}"`, 'a new envelope, so a new ETag');
  t.equal(pkg.headers.etag, `"${sha256(pkg.rawPayload)}"`);
  const zip = await opensslDecrypt(t, pkg.rawPayload, rotated);
  t.same(zip, await collect(decryptPackage(d.ctx, d.sealed.packageId)), 'the new certificate opens it');
  const stored = await ts.deps.db.kysely.selectFrom('deliveries').select(['envelope_cert_sha256', 'fingerprint']).where('id', '=', d.id).executeTakeFirstOrThrow();
  t.equal(stored.envelope_cert_sha256!.toString('hex'), sha256(rotated.certDer), 'stored for the new certificate');
  t.equal(stored.fingerprint!.toString('hex'), sha256(pkg.rawPayload));

  // The mailbox's own certificate takes precedence over the provider's.
  const own = providerCert('Ola sin postkasse');
  await ts.deps.db.kysely
    .insertInto('mailboxes')
    .values({ person_id: d.personId, provider_orgnr: DIGIPOST, address: d.mailboxAddress!, certificate: own.certDer, active: true, updated_at: new Date() })
    .execute();
  const mine = await ts.download(d.id);
  t.equal(mine.statusCode, 200);
  t.same(await opensslDecrypt(t, mine.rawPayload, own), zip, "the mailbox's certificate opens it");
  const later = await ts.download(d.id);
  t.same(later.rawPayload, mine.rawPayload, 'and that envelope is served from then on');
});

t.test('the download refuses what it refused before, whatever it read before', async (t) => {
  const ts = await setup(t);
  const d = await seedDelivery(ts.deps);
  await ts.list();
  // The token is verified (and remembered) and the envelope stored: the download's cheapest path.
  t.equal((await ts.download(d.id)).statusCode, 200);
  t.equal((await ts.download(d.id)).statusCode, 200);

  const eboksHeaders = { authorization: `Bearer ${await ts.token({ org: EBOKS, scope: SCOPES.provider })}` };
  const foreign = await ts.download(d.id, eboksHeaders);
  t.equal(foreign.statusCode, 404, "another provider's delivery is not found");
  t.equal(foreign.json().code, 'POSTBUD_STORAGE_DELIVERY_NOT_FOUND');
  t.notOk(foreign.rawPayload.includes(Buffer.from('pkcs7')), 'and nothing of it is sent');

  await sql`update providers set status = 'suspended' where orgnr = ${DIGIPOST}`.execute(ts.deps.db.kysely);
  const suspended = await ts.download(d.id);
  t.equal(suspended.statusCode, 403, 'suspended: refused at once, with the token it used a moment ago');
  t.equal(suspended.json().type, 'https://postbud.dev/problems/storage/provider-suspended');
  t.equal((await ts.app.inject({ method: 'GET', url: '/v1/deliveries', headers: ts.headers })).statusCode, 403, 'listing too');
  t.equal((await ts.app.inject({ method: 'POST', url: '/v1/deliveries/ack', headers: ts.headers, payload: { ids: [d.id] } })).statusCode, 403, 'and acknowledging');
  await sql`update providers set status = 'active' where orgnr = ${DIGIPOST}`.execute(ts.deps.db.kysely);
  t.equal((await ts.download(d.id)).statusCode, 200, 'reactivated, it downloads again');

  // A remembered token changes nothing for tokens that only look like it.
  const token = ts.headers.authorization.slice('Bearer '.length);
  const [h, p, s] = token.split('.');
  const flipped = `${h}.${p}.${s!.slice(0, -2)}${s!.endsWith('AA') ? 'BB' : 'AA'}`;
  const forgedSig = await ts.download(d.id, { authorization: `Bearer ${flipped}` });
  t.equal(forgedSig.statusCode, 401, 'a changed signature');
  const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
  const otherPayload = Buffer.from(JSON.stringify({ ...claims, consumer: consumer(EBOKS) })).toString('base64url');
  t.equal((await ts.download(d.id, { authorization: `Bearer ${h}.${otherPayload}.${s}` })).statusCode, 401, 'a changed payload under the old signature');
  const dataDir = (ts.deps as typeof ts.deps & { dataDir: string }).dataDir;
  const expired = await signWithDevKey(dataDir, { iss: DEV_ISSUER, aud: ts.config.AUTH_AUDIENCE, iat: Math.floor(Date.now() / 1000) - 120, exp: Math.floor(Date.now() / 1000) - 60, scope: SCOPES.provider, consumer: consumer(DIGIPOST) });
  const exp = await ts.download(d.id, { authorization: `Bearer ${expired}` });
  t.equal(exp.statusCode, 401, 'an expired token');
  t.equal(exp.json().code, 'POSTBUD_TOKEN_EXPIRED');
  const noScope = await ts.download(d.id, { authorization: `Bearer ${await ts.token({ org: DIGIPOST, scope: SCOPES.send })}` });
  t.equal(noScope.statusCode, 403, 'a token without postbud:provider');

  // Cancelled by its sender after the envelope was stored: gone for the provider.
  await sql`update deliveries set state = 'CANCELLED' where id = ${d.id}`.execute(ts.deps.db.kysely);
  const cancelled = await ts.download(d.id);
  t.equal(cancelled.statusCode, 409);
  t.equal(cancelled.json().type, 'https://postbud.dev/problems/storage/delivery-cancelled');
  await sql`update deliveries set state = 'DELIVERED', acked_at = now() where id = ${d.id}`.execute(ts.deps.db.kysely);
  await sql`update packages set status = 'PURGED' where id = ${d.sealed.packageId}`.execute(ts.deps.db.kysely);
  const purged = await ts.download(d.id);
  t.equal(purged.statusCode, 410, 'purged after acknowledgement');
});
