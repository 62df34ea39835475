/* eslint-disable @typescript-eslint/no-explicit-any -- response bodies are JSON read field by field */
import t from 'tap';
import { createDevCertificate } from '../../../shared/registry/dev-certificate.js';
import { findPrintProvider, findProvider, findRecipients, findSender } from '../../../shared/registry/recipients.js';
import { DIGIPOST, EBOKS, importLines, monthsAgo, personIds, PRINT, registry } from './fixtures.js';

const NDJSON = { 'content-type': 'application/x-ndjson' };

t.test('admin onboarding', async (t) => {
  const r = await registry(t);
  const db = r.deps.db.kysely;

  await t.test('senders: onboard, list, suspend', async (t) => {
    let res = await r.inject('POST', '/v1/admin/senders', r.admin, { orgnr: '974760673', name: 'Skatteetaten' });
    t.equal(res.statusCode, 201);
    t.equal(res.json.status, 'active');
    t.equal((await r.inject('POST', '/v1/admin/senders', r.admin, { orgnr: '974760673', name: 'Again' })).statusCode, 409);
    res = await r.inject('POST', '/v1/admin/senders', r.admin, { orgnr: '974760674', name: 'Bad check digit' });
    t.equal(res.statusCode, 400);
    t.equal(res.json.code, 'POSTBUD_REGISTRY_INVALID_ORGNR');
    res = await r.inject('PATCH', '/v1/admin/senders/974760673', r.admin, { status: 'suspended' });
    t.equal(res.json.status, 'suspended');
    t.same(await findSender(db, '974760673'), { orgnr: '974760673', name: 'Skatteetaten', status: 'suspended' });
    t.equal(await findSender(db, '889640782'), undefined);
    t.equal((await r.inject('PATCH', '/v1/admin/senders/889640782', r.admin, { name: 'x' })).statusCode, 404);
    res = await r.inject('GET', '/v1/admin/senders', r.admin);
    t.same(res.json.senders.map((s: any) => s.orgnr), ['974760673']);
  });

  await t.test('providers: certificate checked on registration', async (t) => {
    const ok = createDevCertificate({ commonName: 'New provider' });
    let res = await r.inject('POST', '/v1/admin/providers', r.admin, { orgnr: '889640782', name: 'New', kind: 'digital' });
    t.equal(res.json.code, 'POSTBUD_REGISTRY_CERTIFICATE_REQUIRED');
    const bad: [object, string][] = [
      [createDevCertificate({ commonName: 'weak', bits: 1024 }), 'key-too-small'],
      [createDevCertificate({ commonName: 'future', notBefore: new Date(Date.now() + 86_400_000) }), 'not-yet-valid'],
      [createDevCertificate({ commonName: 'sig', keyUsage: { digitalSignature: true } }), 'no-key-encipherment'],
    ];
    for (const [cert, reason] of bad) {
      res = await r.inject('POST', '/v1/admin/providers', r.admin, { orgnr: '889640782', name: 'New', kind: 'digital', certificate: (cert as { certPem: string }).certPem });
      t.equal(res.statusCode, 400);
      t.equal(res.json.reason, reason);
    }
    res = await r.inject('POST', '/v1/admin/providers', r.admin, { orgnr: '889640782', name: 'New', kind: 'digital', certificate: ok.certPem });
    t.equal(res.statusCode, 201);
    t.equal(res.json.certificate, ok.der.toString('base64'));
    t.equal((await r.inject('POST', '/v1/admin/providers', r.admin, { orgnr: '889640782', name: 'New', kind: 'print' })).statusCode, 409);
    res = await r.inject('PATCH', '/v1/admin/providers/889640782', r.admin, { name: 'Renamed' });
    t.equal(res.json.name, 'Renamed');
    t.equal((await r.inject('PATCH', '/v1/admin/providers/911111111', r.admin, { name: 'x' })).statusCode, 404);
    res = await r.inject('GET', '/v1/admin/providers', r.admin);
    t.same(res.json.providers.map((p: any) => p.orgnr), ['889640782', EBOKS, DIGIPOST, PRINT].sort());
    const info = await findProvider(db, DIGIPOST);
    t.equal(info?.kind, 'digital');
    t.ok(Buffer.isBuffer(info?.certificateDer));
    t.equal((await findPrintProvider(db))?.orgnr, PRINT);
    await r.inject('PATCH', `/v1/admin/providers/${PRINT}`, r.admin, { status: 'suspended' });
    t.equal(await findPrintProvider(db), undefined, 'a suspended print provider is not offered');
    await r.inject('PATCH', `/v1/admin/providers/${PRINT}`, r.admin, { status: 'active' });
  });

  await t.test('only admins onboard', async (t) => {
    for (const token of [r.lookupAll, await r.provider(DIGIPOST), await r.citizen(personIds(1)[0]!, 'idporten-loa-high')]) {
      t.equal((await r.inject('POST', '/v1/admin/senders', token, { orgnr: '889640782', name: 'x' })).statusCode, 403);
      t.equal((await r.inject('PATCH', `/v1/admin/providers/${DIGIPOST}`, token, { status: 'suspended' })).statusCode, 403);
      t.equal((await r.inject('POST', '/v1/admin/persons/import', token, '{}', NDJSON)).statusCode, 403);
    }
    t.equal((await findProvider(db, DIGIPOST))?.status, 'active');
  });

  await t.test('bulk import of persons as JSON lines', async (t) => {
    const [a, b, c] = personIds(3);
    const lines = [
      { personId: a, email: 'a@example.no', emailUpdatedAt: monthsAgo(3), language: 'en', mailbox: { providerOrgnr: DIGIPOST, address: 'a#1' } },
      { personId: b, reserved: true, mobile: '+46701234567' },
      { personId: c, status: 'DELETED' },
    ];
    const body = lines.map((l) => JSON.stringify(l)).join('\n') + '\n\n';
    let res = await r.inject('POST', '/v1/admin/persons/import', r.admin, body, NDJSON);
    t.equal(res.statusCode, 200);
    t.same(res.json, { received: 3, created: 3, updated: 0, unchanged: 0, mailboxesActivated: 1 });
    res = await r.inject('POST', '/v1/admin/persons/import', r.admin, body, NDJSON);
    t.same(res.json, { received: 3, created: 0, updated: 0, unchanged: 3, mailboxesActivated: 0 }, 'importing again changes nothing');
    const found = await findRecipients(db, [a, b, c]);
    t.equal(found.get(a)!.mailbox?.address, 'a#1');
    t.equal(found.get(a)!.language, 'en');
    t.equal(found.get(b)!.reserved, true);
    t.equal(found.get(b)!.mobile?.address, '+46701234567');
    t.equal(found.get(c)!.status, 'DELETED');
    t.same(await db.selectFrom('reservation_history').select(['reserved', 'actor']).where('person_id', '=', b).execute(), [{ reserved: true, actor: 'import' }]);

    res = await r.inject('POST', '/v1/admin/persons/import', r.admin, JSON.stringify({ personId: a, mailbox: { providerOrgnr: EBOKS, address: 'a#2' }, reserved: true }), NDJSON);
    t.same(res.json, { received: 1, created: 0, updated: 1, unchanged: 0, mailboxesActivated: 1 });
    const after = (await findRecipients(db, [a])).get(a)!;
    t.equal(after.mailbox?.providerOrgnr, EBOKS, 'the imported mailbox becomes the active one');
    t.equal(after.reserved, true);
    const jobs = await db.selectFrom('outbox').select('payload').where('job_name', '=', 'mailbox-changed').orderBy('id').execute();
    t.same(jobs.map((j) => j.payload), [
      { personId: a, providerOrgnr: DIGIPOST, mailboxAddress: 'a#1' },
      { personId: a, providerOrgnr: EBOKS, mailboxAddress: 'a#2' },
    ]);
  });

  await t.test('an import with any bad line writes nothing and names the lines', async (t) => {
    const [x, y] = personIds(2);
    const body = [
      JSON.stringify({ personId: x, email: 'x@example.no' }),
      '{not json',
      JSON.stringify({ personId: '12345678901' }),
      JSON.stringify({ personId: y, surprise: 1 }),
      JSON.stringify({ personId: x }),
      JSON.stringify({ personId: y, emailUpdatedAt: 'last tuesday' }),
      JSON.stringify({ personId: y, mobile: '123' }),
      JSON.stringify({ personId: y, mailbox: { providerOrgnr: '123456789', address: 'q' } }),
    ].join('\n');
    const res = await r.inject('POST', '/v1/admin/persons/import', r.admin, body, NDJSON);
    t.equal(res.statusCode, 400);
    t.equal(res.json.code, 'POSTBUD_REGISTRY_INVALID_IMPORT');
    t.same(res.json.errors.map((e: any) => e.line), [2, 3, 4, 5, 6, 7, 8]);
    t.notOk(JSON.stringify(res.json).includes(x), 'errors name lines, not persons');
    t.equal((await findRecipients(db, [x])).get(x)!.status, 'NOT_REGISTERED', 'nothing was written');

    const [z, w] = personIds(2);
    const clash = [
      JSON.stringify({ personId: z, email: 'z@example.no' }),
      JSON.stringify({ personId: w, mailbox: { providerOrgnr: DIGIPOST, address: 'a#1' } }),
      JSON.stringify({ personId: z, mailbox: { providerOrgnr: PRINT, address: 'p' } }),
    ];
    const res2 = await r.inject('POST', '/v1/admin/persons/import', r.admin, [clash[0], clash[1]].join('\n'), NDJSON);
    t.equal(res2.statusCode, 400);
    t.same(res2.json.errors, [{ line: 2, message: 'the mailbox address belongs to another person' }]);
    t.equal((await findRecipients(db, [z])).get(z)!.status, 'NOT_REGISTERED', 'the valid line was rolled back too');
    const res3 = await r.inject('POST', '/v1/admin/persons/import', r.admin, clash[2]!, NDJSON);
    t.same(res3.json.errors, [{ line: 1, message: 'mailbox.providerOrgnr is not an active digital provider' }]);
    const [a] = await db.selectFrom('mailboxes').select('person_id').where('address', '=', 'a#2').execute();
    const res4 = await r.inject('POST', '/v1/admin/persons/import', r.admin, JSON.stringify({ personId: a!.person_id, mailbox: { providerOrgnr: EBOKS, address: 'a#3' } }), NDJSON);
    t.same(res4.json.errors, [{ line: 1, message: 'the person has another open mailbox at this provider' }]);
    t.equal((await r.inject('POST', '/v1/admin/persons/import', r.admin, '\n\n', NDJSON)).statusCode, 400, 'an empty import');
    t.equal((await r.inject('POST', '/v1/admin/persons/import', r.admin, 'x', { 'content-type': 'text/csv' })).statusCode, 415);
  });

  await t.test('import keeps timestamps it is given and the 18-month rule reads them', async (t) => {
    const [p] = personIds(1);
    await importLines(r, [{ personId: p, email: 'p@example.no', emailUpdatedAt: monthsAgo(24), emailVerifiedAt: monthsAgo(17) }]);
    let rec = (await findRecipients(db, [p])).get(p)!;
    t.equal(rec.email?.usable, true, 'verified 17 months ago: usable');
    await importLines(r, [{ personId: p, email: 'p@example.no', emailVerifiedAt: monthsAgo(19) }]);
    rec = (await findRecipients(db, [p])).get(p)!;
    t.equal(rec.email?.usable, false, 'verified 19 months ago and updated 24: not usable');
    t.equal(rec.canNotify, false);
    await importLines(r, [{ personId: p, email: 'new@example.no' }]);
    rec = (await findRecipients(db, [p])).get(p)!;
    t.equal(rec.email?.usable, true, 'a new address is fresh');
    t.equal(rec.email?.verifiedAt, null);
  });
});
