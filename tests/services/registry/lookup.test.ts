/* eslint-disable @typescript-eslint/no-explicit-any -- response bodies are JSON read field by field */
import t from 'tap';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { DIGIPOST, EBOKS, importLines, monthsAgo, personIds, registry, AGENCY, devCerts } from './fixtures.js';

t.test('native lookup', async (t) => {
  const r = await registry(t);
  const [withMailbox, reserved, outdated, deleted, unknown, noContact] = personIds(6);
  await importLines(r, [
    { personId: withMailbox, email: 'ola@example.no', mobile: '99887766', language: 'nn', mailbox: { providerOrgnr: DIGIPOST, address: 'ola.nordmann#1' } },
    { personId: reserved, reserved: true, email: 'kari@example.no', mailbox: { providerOrgnr: EBOKS, address: 'kari#2' } },
    { personId: outdated, email: 'old@example.no', emailUpdatedAt: monthsAgo(19), emailVerifiedAt: monthsAgo(18.5), mailbox: { providerOrgnr: EBOKS, address: 'old#3' } },
    { personId: deleted, status: 'DELETED', email: 'gone@example.no' },
    { personId: noContact },
  ]);

  await t.test('answers every id in order with status, reservation and canNotify', async (t) => {
    const res = await r.inject('POST', '/v1/persons/lookup', r.lookupAll, { personIds: [withMailbox, reserved, outdated, deleted, unknown, noContact, withMailbox] });
    t.equal(res.statusCode, 200);
    const persons = res.json.persons;
    t.same(
      persons.map((p: any) => [p.personId, p.status, p.reserved, p.canNotify]),
      [
        [withMailbox, 'ACTIVE', false, true],
        [reserved, 'ACTIVE', true, false],
        [outdated, 'ACTIVE', false, false],
        [deleted, 'DELETED', false, false],
        [unknown, 'NOT_REGISTERED', false, false],
        [noContact, 'ACTIVE', false, false],
      ],
      'duplicates answered once; unknown valid id is NOT_REGISTERED',
    );
    const p = persons[0];
    t.equal(p.email.address, 'ola@example.no');
    t.equal(p.mobile.address, '+4799887766', 'mobile normalised to E.164');
    t.equal(p.email.usable, true);
    t.match(p.email.updatedAt, /^\d{4}-\d\d-\d\dT/);
    t.equal(p.email.verifiedAt, null);
    t.equal(p.language, 'nn');
    t.same(p.mailbox, { providerOrgnr: DIGIPOST, providerName: 'Digipost', address: 'ola.nordmann#1' });
    t.equal(p.certificate, devCerts()[0].der.toString('base64'), "provider's certificate when the mailbox has none");
    t.equal(persons[2].email.usable, false, 'outdated contact point is flagged');
    t.notOk(persons[3].email, 'nothing but status for a deleted person');
    t.notOk(persons[4].mailbox);
  });

  await t.test('fields follow the scopes', async (t) => {
    const basic = await r.token({ org: AGENCY, scope: SCOPES.lookup });
    let res = await r.inject('POST', '/v1/persons/lookup', basic, { personIds: [withMailbox] });
    t.same(Object.keys(res.json.persons[0]).sort(), ['canNotify', 'personId', 'reserved', 'status']);
    const contact = await r.token({ org: AGENCY, scope: SCOPES.lookupContact });
    res = await r.inject('POST', '/v1/persons/lookup', contact, { personIds: [withMailbox] });
    t.ok(res.json.persons[0].email);
    t.notOk(res.json.persons[0].mailbox, 'no mailbox without the digital-post scope');
    t.notOk(res.json.persons[0].certificate);
    const dp = await r.token({ org: AGENCY, scope: SCOPES.lookupDigitalPost });
    res = await r.inject('POST', '/v1/persons/lookup', dp, { personIds: [withMailbox] });
    t.notOk(res.json.persons[0].email, 'no contact points without the contact scope');
    t.ok(res.json.persons[0].mailbox);
    t.ok(res.json.persons[0].certificate);
  });

  await t.test('invalid ids give 400 naming them; 1001 ids give 400', async (t) => {
    let res = await r.inject('POST', '/v1/persons/lookup', r.lookupAll, { personIds: [withMailbox, '12345678901', 'abc', '12345678901'] });
    t.equal(res.statusCode, 400);
    t.equal(res.json.type, 'https://postbud.dev/problems/registry/invalid-person-id');
    t.same(res.json.invalidPersonIds, ['12345678901', 'abc']);
    t.match(res.headers['content-type'], /application\/problem\+json/);
    res = await r.inject('POST', '/v1/persons/lookup', r.lookupAll, { personIds: personIds(1001) });
    t.equal(res.statusCode, 400);
    t.equal(res.json.code, 'POSTBUD_VALIDATION');
    res = await r.inject('POST', '/v1/persons/lookup', r.lookupAll, { personIds: [] });
    t.equal(res.statusCode, 400);
    res = await r.inject('POST', '/v1/persons/lookup', r.lookupAll, { personIds: [withMailbox], extra: 1 });
    t.equal(res.statusCode, 400, 'unknown body properties are rejected');
    res = await r.inject('POST', '/v1/persons/lookup', r.lookupAll, { personIds: [12345678901] });
    t.equal(res.statusCode, 400);
  });

  await t.test('1000 ids in one batch', async (t) => {
    const ids = personIds(1000);
    const res = await r.inject('POST', '/v1/persons/lookup', r.lookupAll, { personIds: ids });
    t.equal(res.statusCode, 200);
    t.equal(res.json.persons.length, 1000);
  });

  await t.test('who may look up', async (t) => {
    const body = { personIds: [withMailbox] };
    t.equal((await r.inject('POST', '/v1/persons/lookup', undefined, body)).statusCode, 401, 'no token');
    const noScope = await r.token({ org: AGENCY, scope: SCOPES.send });
    t.equal((await r.inject('POST', '/v1/persons/lookup', noScope, body)).json.code, 'POSTBUD_FORBIDDEN_SCOPE', 'missing scope');
    const krrOnly = await r.token({ org: AGENCY, scope: SCOPES.krrContact });
    t.equal((await r.inject('POST', '/v1/persons/lookup', krrOnly, body)).statusCode, 403, 'KRR scopes only open the KRR API');
    const citizen = await r.citizen(withMailbox, 'idporten-loa-high');
    t.equal((await r.inject('POST', '/v1/persons/lookup', citizen, body)).json.code, 'POSTBUD_FORBIDDEN', 'citizen token on a client route');
    const expired = await r.token({ org: AGENCY, scope: SCOPES.lookup, ttlSeconds: -60 });
    t.equal((await r.inject('POST', '/v1/persons/lookup', expired, body)).json.code, 'POSTBUD_TOKEN_EXPIRED');
    const wrongAud = await r.token({ org: AGENCY, scope: SCOPES.lookup, audience: 'someone-else' });
    t.equal((await r.inject('POST', '/v1/persons/lookup', wrongAud, body)).statusCode, 401);
    const [h, p] = r.lookupAll.split('.');
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), scope: SCOPES.admin })).toString('base64url')}.${r.lookupAll.split('.')[2]}`;
    t.equal((await r.inject('POST', '/v1/persons/lookup', forged, body)).statusCode, 401, 'tampered payload');
  });

  await t.test('every lookup is audited without personIds; admins can query it', async (t) => {
    const token = await r.token({ org: '889640782', scope: SCOPES.lookup });
    await r.inject('POST', '/v1/persons/lookup', token, { personIds: [withMailbox, reserved] }, { 'x-purpose': `case 2024/17 about ${withMailbox}` });
    const res = await r.inject('GET', '/v1/admin/lookups?org=889640782', r.admin);
    t.equal(res.statusCode, 200);
    t.equal(res.json.lookups.length, 1);
    const a = res.json.lookups[0];
    t.equal(a.consumerOrg, '889640782');
    t.equal(a.personCount, 2);
    t.equal(a.api, 'v1');
    t.equal(a.purpose, 'case 2024/17 about [personId]', 'a personId in the purpose is scrubbed');
    t.notOk(JSON.stringify(res.json).includes(withMailbox));
    const all = await r.inject('GET', `/v1/admin/lookups?limit=2&from=${encodeURIComponent(monthsAgo(1))}`, r.admin);
    t.equal(all.json.lookups.length, 2);
    t.ok(all.json.nextBefore);
    const older = await r.inject('GET', `/v1/admin/lookups?before=${all.json.nextBefore}&to=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`, r.admin);
    t.ok(older.json.lookups.length >= 1);
    t.ok(older.json.lookups.every((l: any) => BigInt(l.id) < BigInt(all.json.nextBefore)));
    t.equal((await r.inject('GET', '/v1/admin/lookups', r.lookupAll)).statusCode, 403, 'only admins read the audit');
    t.equal((await r.inject('GET', '/v1/admin/lookups?from=yesterday', r.admin)).statusCode, 400);
  });
});
