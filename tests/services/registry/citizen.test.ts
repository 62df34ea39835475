/* eslint-disable @typescript-eslint/no-explicit-any -- response bodies are JSON read field by field */
import t from 'tap';
import { DIGIPOST, EBOKS, personIds, registry } from './fixtures.js';

t.test('citizen self-service', async (t) => {
  const r = await registry(t);
  const [me, other] = personIds(2);
  const tok = await r.citizen(me);
  const low = await r.citizen(me, 'idporten-loa-low');

  await t.test('an unknown citizen reads an empty record and becomes ACTIVE on the first change', async (t) => {
    let res = await r.inject('GET', '/v1/me', low);
    t.equal(res.statusCode, 200, 'reading needs no particular acr');
    t.equal(res.json.status, 'NOT_REGISTERED');
    t.same(res.json.mailboxes, []);
    res = await r.inject('PUT', '/v1/me/email', tok, { address: ' me@example.no ' });
    t.equal(res.statusCode, 200);
    t.equal(res.json.status, 'ACTIVE');
    t.equal(res.json.email.address, 'me@example.no');
    t.equal(res.json.email.verifiedAt, null);
    t.equal(res.json.email.usable, true);
    t.equal(res.json.canNotify, true);
  });

  await t.test('low acr may not change anything', async (t) => {
    for (const [method, url, body] of [
      ['PUT', '/v1/me/email', { address: 'x@example.no' }],
      ['POST', '/v1/me/email/confirm', undefined],
      ['DELETE', '/v1/me/mobile', undefined],
      ['PUT', '/v1/me/reservation', { reserved: true }],
      ['PUT', '/v1/me/language', { language: 'en' }],
      ['PUT', '/v1/me/mailbox', { mailboxId: '1' }],
    ] as const) {
      const res = await r.inject(method, url, low, body);
      t.equal(res.statusCode, 403, `${method} ${url}`);
      t.equal(res.json.code, 'POSTBUD_INSUFFICIENT_ACR');
    }
    const res = await r.inject('GET', '/v1/me', tok);
    t.equal(res.json.email.address, 'me@example.no', 'unchanged');
    t.equal(res.json.reserved, false);
  });

  await t.test('client tokens and missing tokens are refused', async (t) => {
    t.equal((await r.inject('GET', '/v1/me', r.lookupAll)).json.code, 'POSTBUD_FORBIDDEN');
    t.equal((await r.inject('PUT', '/v1/me/reservation', r.admin, { reserved: true })).statusCode, 403);
    t.equal((await r.inject('GET', '/v1/me', undefined)).statusCode, 401);
    const expired = await r.token({ pid: me, acr: 'idporten-loa-high', ttlSeconds: -120 });
    t.equal((await r.inject('GET', '/v1/me', expired)).json.code, 'POSTBUD_TOKEN_EXPIRED');
    const bogus = await r.token({ pid: '12345678901', acr: 'idporten-loa-high' });
    t.equal((await r.inject('PUT', '/v1/me/language', bogus, { language: 'nb' })).statusCode, 400, 'a pid that is no personId');
  });

  await t.test('set and confirm mobile; remove', async (t) => {
    let res = await r.inject('PUT', '/v1/me/mobile', tok, { number: '987 65 432' });
    t.equal(res.json.mobile.address, '+4798765432');
    res = await r.inject('PUT', '/v1/me/mobile', tok, { number: '12345' });
    t.equal(res.statusCode, 400);
    t.equal(res.json.code, 'POSTBUD_REGISTRY_INVALID_CONTACT');
    res = await r.inject('PUT', '/v1/me/email', tok, { address: 'not-an-address' });
    t.equal(res.statusCode, 400);
    res = await r.inject('POST', '/v1/me/mobile/confirm', tok);
    t.ok(res.json.mobile.verifiedAt, 'confirm sets verifiedAt');
    res = await r.inject('DELETE', '/v1/me/mobile', tok);
    t.equal(res.json.mobile, null);
    res = await r.inject('DELETE', '/v1/me/mobile', tok);
    t.equal(res.statusCode, 200, 'removing twice is fine');
    res = await r.inject('POST', '/v1/me/mobile/confirm', tok);
    t.equal(res.statusCode, 409, 'nothing to confirm');
  });

  await t.test('reserve and withdraw, with history', async (t) => {
    let res = await r.inject('PUT', '/v1/me/reservation', tok, { reserved: true });
    t.equal(res.json.reserved, true);
    t.ok(res.json.reservedAt);
    t.equal(res.json.canNotify, false);
    await r.inject('PUT', '/v1/me/reservation', tok, { reserved: true });
    res = await r.inject('PUT', '/v1/me/reservation', tok, { reserved: false });
    t.equal(res.json.reserved, false);
    t.equal(res.json.reservedAt, null);
    const history = await r.deps.db.kysely.selectFrom('reservation_history').select(['reserved', 'actor']).where('person_id', '=', me).orderBy('id').execute();
    t.same(history, [{ reserved: true, actor: 'citizen' }, { reserved: false, actor: 'citizen' }], 'a repeated reservation adds no history');
  });

  await t.test('language', async (t) => {
    const res = await r.inject('PUT', '/v1/me/language', tok, { language: 'se' });
    t.equal(res.json.language, 'se');
    t.ok(res.json.languageUpdatedAt);
    t.equal((await r.inject('PUT', '/v1/me/language', tok, { language: 'de' })).statusCode, 400);
  });

  await t.test('choose among my mailboxes, one active at a time', async (t) => {
    const dp = await r.provider(DIGIPOST);
    const eb = await r.provider(EBOKS);
    const a = (await r.inject('POST', '/v1/provider/mailboxes', dp, { personId: me, address: 'me#dp' })).json;
    const b = (await r.inject('POST', '/v1/provider/mailboxes', eb, { personId: me, address: 'me#eb' })).json;
    const theirs = (await r.inject('POST', '/v1/provider/mailboxes', eb, { personId: other, address: 'other#eb' })).json;
    t.equal(a.active, true, 'the first mailbox becomes active');
    t.equal(b.active, false, 'a second one waits for the citizen');
    let res = await r.inject('GET', '/v1/me', tok);
    t.same(res.json.mailboxes.map((m: any) => [m.providerName, m.active, m.selectable]), [['Digipost', true, true], ['e-Boks', false, true]]);

    await r.deps.db.kysely.deleteFrom('outbox').execute();
    res = await r.inject('PUT', '/v1/me/mailbox', tok, { mailboxId: b.id });
    t.equal(res.statusCode, 200);
    t.same(res.json.mailboxes.map((m: any) => m.active), [false, true]);
    const jobs = await r.deps.db.kysely.selectFrom('outbox').select(['queue', 'job_name', 'payload']).execute();
    t.same(jobs, [{ queue: 'storage', job_name: 'mailbox-changed', payload: { personId: me, providerOrgnr: EBOKS, mailboxAddress: 'me#eb' } }], 'storage hears of the switch');

    res = await r.inject('PUT', '/v1/me/mailbox', tok, { mailboxId: b.id });
    t.equal(res.statusCode, 200, 'choosing the active one again is a no-op');
    t.equal((await r.deps.db.kysely.selectFrom('outbox').select('id').execute()).length, 1, 'and enqueues nothing');

    res = await r.inject('PUT', '/v1/me/mailbox', tok, { mailboxId: theirs.id });
    t.equal(res.statusCode, 404, "another person's mailbox cannot be chosen");
    res = await r.inject('PUT', '/v1/me/mailbox', tok, { mailboxId: 'abc' });
    t.equal(res.statusCode, 400);

    await r.inject('POST', `/v1/provider/mailboxes/${a.id}/close`, dp);
    res = await r.inject('PUT', '/v1/me/mailbox', tok, { mailboxId: a.id });
    t.equal(res.statusCode, 409, 'a closed mailbox cannot be chosen');
    t.equal(res.json.code, 'POSTBUD_REGISTRY_MAILBOX_CLOSED');

    const c = (await r.inject('POST', '/v1/provider/mailboxes', dp, { personId: me, address: 'me#dp2' })).json;
    await r.inject('PATCH', `/v1/admin/providers/${DIGIPOST}`, r.admin, { status: 'suspended' });
    res = await r.inject('PUT', '/v1/me/mailbox', tok, { mailboxId: c.id });
    t.equal(res.statusCode, 409, "a suspended provider's mailbox cannot be chosen");
    res = await r.inject('GET', '/v1/me', tok);
    t.equal(res.json.mailboxes.find((m: any) => m.id === c.id).selectable, false);
    await r.inject('PATCH', `/v1/admin/providers/${DIGIPOST}`, r.admin, { status: 'active' });

    const history = await r.deps.db.kysely.selectFrom('mailbox_history').select(['event', 'actor']).where('person_id', '=', me).orderBy('id').execute();
    t.same(
      history.map((h) => h.event),
      ['registered', 'activated', 'registered', 'deactivated', 'activated', 'closed', 'registered'],
    );
  });

  await t.test('a deleted person cannot change anything', async (t) => {
    const [gone] = personIds(1);
    const res0 = await r.inject('POST', '/v1/admin/persons/import', r.admin, JSON.stringify({ personId: gone, status: 'DELETED' }), { 'content-type': 'application/x-ndjson' });
    t.equal(res0.statusCode, 200);
    const res = await r.inject('PUT', '/v1/me/language', await r.citizen(gone), { language: 'nb' });
    t.equal(res.statusCode, 409);
    t.equal(res.json.code, 'POSTBUD_REGISTRY_PERSON_DELETED');
    t.equal((await r.inject('GET', '/v1/me', await r.citizen(gone))).json.status, 'DELETED');
  });
});
