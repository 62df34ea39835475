import t from 'tap';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { createDevCertificate } from '../../../shared/registry/dev-certificate.js';
import { findRecipients } from '../../../shared/registry/recipients.js';
import { devCerts, DIGIPOST, EBOKS, personIds, PRINT, registry } from './fixtures.js';

t.test('provider mailbox registration', async (t) => {
  const r = await registry(t);
  const dp = await r.provider(DIGIPOST);
  const eb = await r.provider(EBOKS);
  const db = r.deps.db.kysely;
  const [p1, p2, p3] = personIds(3);
  const ownCert = createDevCertificate({ commonName: 'mailbox of p1' });

  await t.test('register with an own certificate; a repeat returns the same mailbox', async (t) => {
    let res = await r.inject('POST', '/v1/provider/mailboxes', dp, { personId: p1, address: 'p1#A', certificate: ownCert.certPem });
    t.equal(res.statusCode, 201);
    t.equal(res.json.active, true);
    t.equal(res.json.hasOwnCertificate, true);
    const again = await r.inject('POST', '/v1/provider/mailboxes', dp, { personId: p1, address: 'p1#A' });
    t.equal(again.statusCode, 200);
    t.equal(again.json.id, res.json.id);
    const rec = (await findRecipients(db, [p1])).get(p1)!;
    t.ok(rec.mailbox!.certificateDer.equals(ownCert.der), "lookups give the mailbox's own certificate");
    t.equal(rec.mailbox!.ownCertificate, true);
    const jobs = await db.selectFrom('outbox').select('payload').where('job_name', '=', 'mailbox-changed').execute();
    t.same(jobs.map((j) => j.payload), [{ personId: p1, providerOrgnr: DIGIPOST, mailboxAddress: 'p1#A' }]);
    res = await r.inject('GET', `/v1/provider/mailboxes/${res.json.id}`, dp);
    t.equal(res.json.address, 'p1#A');
  });

  await t.test('conflicts', async (t) => {
    let res = await r.inject('POST', '/v1/provider/mailboxes', dp, { personId: p2, address: 'p1#A' });
    t.equal(res.statusCode, 409);
    t.equal(res.json.code, 'POSTBUD_REGISTRY_MAILBOX_ADDRESS_TAKEN');
    res = await r.inject('POST', '/v1/provider/mailboxes', dp, { personId: p1, address: 'p1#B' });
    t.equal(res.statusCode, 409, 'one open mailbox per person per provider');
    t.equal(res.json.code, 'POSTBUD_REGISTRY_MAILBOX_EXISTS');
    res = await r.inject('POST', '/v1/provider/mailboxes', eb, { personId: p2, address: 'p1#A' });
    t.equal(res.statusCode, 201, 'addresses are per provider');
  });

  await t.test('bad input is 400, never 5xx', async (t) => {
    const cases: [object, string][] = [
      [{ personId: '12345678901', address: 'x' }, 'POSTBUD_REGISTRY_INVALID_PERSON_ID'],
      [{ personId: p3, address: 'x', certificate: 'not a certificate!' }, 'POSTBUD_REGISTRY_INVALID_CERTIFICATE'],
      [{ personId: p3, address: 'x', certificate: Buffer.from('hello world').toString('base64') }, 'POSTBUD_REGISTRY_INVALID_CERTIFICATE'],
      [{ personId: p3, address: 'x', certificate: createDevCertificate({ commonName: 'weak', bits: 1024 }).certPem }, 'POSTBUD_REGISTRY_INVALID_CERTIFICATE'],
      [{ personId: p3, address: '' }, 'POSTBUD_VALIDATION'],
      [{ personId: p3, address: 'x', surprise: true }, 'POSTBUD_VALIDATION'],
    ];
    for (const [body, code] of cases) {
      const res = await r.inject('POST', '/v1/provider/mailboxes', dp, body);
      t.equal(res.statusCode, 400, code);
      t.equal(res.json.code, code);
    }
    const weak = await r.inject('POST', '/v1/provider/mailboxes', dp, { personId: p3, address: 'x', certificate: createDevCertificate({ commonName: 'weak', bits: 1024 }).certPem });
    t.equal(weak.json.reason, 'key-too-small');
    t.equal((await r.inject('GET', '/v1/provider/mailboxes/not-a-number', dp)).statusCode, 400);
  });

  await t.test("tenant rules: another provider's mailbox does not exist for you", async (t) => {
    const mine = (await r.inject('POST', '/v1/provider/mailboxes', dp, { personId: p3, address: 'p3#A' })).json;
    t.equal((await r.inject('GET', `/v1/provider/mailboxes/${mine.id}`, eb)).statusCode, 404);
    t.equal((await r.inject('PATCH', `/v1/provider/mailboxes/${mine.id}`, eb, { address: 'stolen' })).statusCode, 404);
    t.equal((await r.inject('POST', `/v1/provider/mailboxes/${mine.id}/close`, eb)).statusCode, 404);
    t.equal((await findRecipients(db, [p3])).get(p3)!.mailbox!.address, 'p3#A', 'untouched');

    const stranger = await r.token({ org: '974760673', scope: SCOPES.provider });
    let res = await r.inject('POST', '/v1/provider/mailboxes', stranger, { personId: p3, address: 'q' });
    t.equal(res.statusCode, 403);
    t.equal(res.json.code, 'POSTBUD_REGISTRY_PROVIDER_NOT_REGISTERED');
    res = await r.inject('POST', '/v1/provider/mailboxes', await r.token({ org: PRINT, scope: SCOPES.provider }), { personId: p3, address: 'q' });
    t.equal(res.json.code, 'POSTBUD_REGISTRY_PROVIDER_NOT_DIGITAL');
    res = await r.inject('POST', '/v1/provider/mailboxes', await r.token({ org: DIGIPOST, scope: SCOPES.lookup }), { personId: p3, address: 'q' });
    t.equal(res.json.code, 'POSTBUD_FORBIDDEN_SCOPE', 'the provider scope is required');
    res = await r.inject('POST', '/v1/provider/mailboxes', await r.citizen(p3, 'idporten-loa-high'), { personId: p3, address: 'q' });
    t.equal(res.json.code, 'POSTBUD_FORBIDDEN', 'citizens cannot register mailboxes');
    res = await r.inject('POST', '/v1/provider/mailboxes', await r.token({ org: DIGIPOST, scope: SCOPES.provider, ttlSeconds: -100 }), { personId: p3, address: 'q' });
    t.equal(res.statusCode, 401);
  });

  await t.test('update address and certificate', async (t) => {
    const m = (await r.inject('GET', '/v1/provider/mailboxes/1', dp)).json;
    await db.deleteFrom('outbox').execute();
    let res = await r.inject('PATCH', `/v1/provider/mailboxes/${m.id}`, dp, { address: 'p1#A2', certificate: null });
    t.equal(res.statusCode, 200);
    t.equal(res.json.address, 'p1#A2');
    t.equal(res.json.hasOwnCertificate, false);
    const rec = (await findRecipients(db, [p1])).get(p1)!;
    t.ok(rec.mailbox!.certificateDer.equals(devCerts()[0].der), "without an own certificate the provider's is used");
    const jobs = await db.selectFrom('outbox').select('payload').execute();
    t.same(jobs.map((j) => j.payload), [{ personId: p1, providerOrgnr: DIGIPOST, mailboxAddress: 'p1#A2' }], 'address change re-addresses pending letters');
    res = await r.inject('PATCH', `/v1/provider/mailboxes/${m.id}`, dp, { address: 'p3#A' });
    t.equal(res.statusCode, 409);
    res = await r.inject('PATCH', `/v1/provider/mailboxes/${m.id}`, dp, { certificate: ownCert.der.toString('base64') });
    t.equal(res.json.hasOwnCertificate, true);
    res = await r.inject('PATCH', `/v1/provider/mailboxes/${m.id}`, dp, {});
    t.equal(res.statusCode, 400, 'an empty change is refused');
  });

  await t.test('close: the person has no active mailbox, storage is told', async (t) => {
    const m = (await r.inject('GET', '/v1/provider/mailboxes/1', dp)).json;
    await db.deleteFrom('outbox').execute();
    let res = await r.inject('POST', `/v1/provider/mailboxes/${m.id}/close`, dp);
    t.equal(res.statusCode, 200);
    t.ok(res.json.closedAt);
    t.equal(res.json.active, false);
    t.notOk((await findRecipients(db, [p1])).get(p1)!.mailbox);
    const jobs = await db.selectFrom('outbox').select('payload').execute();
    t.same(jobs.map((j) => j.payload), [{ personId: p1, providerOrgnr: null, mailboxAddress: null }]);
    res = await r.inject('POST', `/v1/provider/mailboxes/${m.id}/close`, dp);
    t.equal(res.statusCode, 200, 'closing twice is harmless');
    t.equal((await db.selectFrom('outbox').select('id').execute()).length, 1);
    res = await r.inject('PATCH', `/v1/provider/mailboxes/${m.id}`, dp, { address: 'zzz' });
    t.equal(res.statusCode, 409);
    res = await r.inject('POST', '/v1/provider/mailboxes', dp, { personId: p1, address: 'p1#A2' });
    t.equal(res.statusCode, 200, 'registering the address again reopens it');
    t.equal(res.json.closedAt, null);
    t.equal(res.json.active, true, 'and it is active again since the person had none');
  });

  await t.test('rotate the provider certificate', async (t) => {
    const next = createDevCertificate({ commonName: 'e-Boks 2' });
    let res = await r.inject('PUT', '/v1/provider/certificate', eb, { certificate: next.certPem });
    t.equal(res.statusCode, 200);
    t.equal(res.json.affectedPersons, 1, 'the one person at e-Boks without an own certificate');
    t.ok((await findRecipients(db, [p2])).get(p2)!.mailbox!.certificateDer.equals(next.der));
    const expired = createDevCertificate({ commonName: 'old', notBefore: new Date(Date.now() - 2 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
    res = await r.inject('PUT', '/v1/provider/certificate', eb, { certificate: expired.certPem });
    t.equal(res.statusCode, 400);
    t.equal(res.json.reason, 'expired');
    const signOnly = createDevCertificate({ commonName: 'sign', keyUsage: { digitalSignature: true } });
    res = await r.inject('PUT', '/v1/provider/certificate', eb, { certificate: signOnly.certPem });
    t.equal(res.json.reason, 'no-key-encipherment');
  });

  await t.test('a suspended provider cannot register and its mailboxes leave lookups', async (t) => {
    await r.inject('PATCH', `/v1/admin/providers/${EBOKS}`, r.admin, { status: 'suspended' });
    const res = await r.inject('POST', '/v1/provider/mailboxes', eb, { personId: p3, address: 'p3#E' });
    t.equal(res.json.code, 'POSTBUD_REGISTRY_PROVIDER_SUSPENDED');
    t.notOk((await findRecipients(db, [p2])).get(p2)!.mailbox);
    await r.inject('PATCH', `/v1/admin/providers/${EBOKS}`, r.admin, { status: 'active' });
    t.ok((await findRecipients(db, [p2])).get(p2)!.mailbox);
  });
});
