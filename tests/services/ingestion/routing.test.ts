import { createHash, randomBytes } from 'node:crypto';
import t from 'tap';
import { sql } from 'kysely';
import { compactVerify, createLocalJWKSet, type JSONWebKeySet } from 'jose';
import { service as ingestion } from '../../../services/ingestion/app.js';
import { expireDelivery } from '../../../services/ingestion/expiry.js';
import { readdress } from '../../../services/storage/deliveries.js';
import { service as storage } from '../../../services/storage/app.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { storageContext } from '../../../shared/storage/context.js';
import { testService } from '../../helpers/service.js';
import { opensslDecrypt, unzip } from '../storage/fixtures.js';
import { DIGIPOST, EBOKS, letter, multipart, newKey, PDF, PERSONS, PRINT, PRINTER, providerCertificate, seedRegistry, SENDER } from './fixtures.js';

t.test('what a provider gets describes where the letter was delivered, after re-addressing and the print fallback', async (t) => {
  const KEKS = `test:${randomBytes(32).toString('base64')}`;
  const svc = await testService(t, ingestion, { env: { KEKS } });
  const store = await testService(t, storage, { databaseUrl: svc.config.DATABASE_URL!, env: { KEKS } });
  const db = svc.deps.db.kysely;
  await seedRegistry(db);
  const dev = providerCertificate();
  const key = { certDer: dev.der, certPem: dev.certPem, keyPem: dev.keyPem };
  await sql`update providers set certificate = ${dev.der} where orgnr = ${PRINTER}`.execute(db);
  const jwks = createLocalJWKSet((await store.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json() as JSONWebKeySet);
  const providerAuth = async (org: string) => ({ authorization: `Bearer ${await store.token({ org, scope: SCOPES.provider })}` });

  const sender = { authorization: `Bearer ${await svc.token({ org: SENDER, scope: SCOPES.send })}` };
  const b = multipart(letter({ print: PRINT }), [{ name: 'vedtak.pdf', content: PDF(1000) }]);
  const sent = await svc.app.inject({ method: 'POST', url: '/v1/messages', headers: { ...sender, 'content-type': b.contentType, 'idempotency-key': newKey() }, payload: b.payload });
  t.equal(sent.statusCode, 201, sent.body);
  const messageId = sent.json().id as string;
  const chunks = async () => (await db.selectFrom('package_chunks').select('data').orderBy('seq').execute()).map((c) => c.data);
  const sealedCiphertext = await chunks();

  /** Lists at `org`, checks the signed routing, downloads, decrypts and returns the manifest. */
  const pull = async (org: string) => {
    const headers = await providerAuth(org);
    const [item] = (await store.app.inject({ method: 'GET', url: '/v1/deliveries', headers })).json().deliveries;
    t.equal(item?.messageId, messageId, `listed at ${org}`);
    const routing = JSON.parse(Buffer.from((await compactVerify(item.routing, jwks)).payload).toString());
    const pkg = await store.app.inject({ method: 'GET', url: `/v1/deliveries/${item.id}/package`, headers });
    const entries = await unzip(await opensslDecrypt(t, pkg.rawPayload, key));
    const manifestJson = entries.find((e) => e.name === 'manifest.json')!.data;
    t.equal(routing.manifestSha256, createHash('sha256').update(manifestJson).digest('hex'), 'the routing statement is bound to this manifest');
    return { item, routing, manifestJson: manifestJson.toString() };
  };

  const atDigipost = await pull(DIGIPOST);
  t.match(atDigipost.routing, { route: 'DIGITAL', providerOrgnr: DIGIPOST, mailboxAddress: 'ola.nordmann#1' });

  // The citizen moves to e-Boks: the pending delivery follows.
  await sql`update mailboxes set active = false where person_id = ${PERSONS.digital}`.execute(db);
  await sql`insert into mailboxes (person_id, provider_orgnr, address, active) values (${PERSONS.digital}, ${EBOKS}, 'ola-eboks', true)`.execute(db);
  t.equal(await readdress(storageContext(store.deps), { personId: PERSONS.digital }), 1);
  const atEboks = await pull(EBOKS);
  t.match(atEboks.routing, { route: 'DIGITAL', providerOrgnr: EBOKS, mailboxAddress: 'ola-eboks', deliveryId: atDigipost.item.id });
  t.match(atEboks.item, { mailboxAddress: 'ola-eboks' });
  for (const stale of [DIGIPOST, 'ola.nordmann#1']) t.notOk(atEboks.manifestJson.includes(stale), `the decrypted manifest does not name ${stale}`);

  // Not acknowledged in time: the print fallback, a new delivery of the same package.
  t.equal(await expireDelivery(svc.deps.db, storageContext(svc.deps), { messageId, deliveryId: atDigipost.item.id }, 60), 'print');
  const atPrinter = await pull(PRINTER);
  t.match(atPrinter.routing, { route: 'PRINT', providerOrgnr: PRINTER, mailboxAddress: null, print: PRINT });
  t.match(atPrinter.item, { route: 'PRINT', print: PRINT });
  for (const stale of [DIGIPOST, EBOKS, 'ola.nordmann#1', 'ola-eboks']) t.notOk(atPrinter.manifestJson.includes(stale), `the print package's manifest does not name ${stale}`);

  t.same(await chunks(), sealedCiphertext, 'the ciphertext was never re-encrypted');
});
