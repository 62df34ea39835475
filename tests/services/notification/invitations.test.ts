import { Writable } from 'node:stream';
import { sql } from 'kysely';
import t from 'tap';
import { DEV_ISSUER } from '../../../shared/auth/dev-issuer.js';
import { syntheticPersonIdList } from '../../../shared/ids/person-id.js';
import { createLogger } from '../../../shared/logging/logger.js';
import { monthsBefore } from '../../../shared/registry/contact-rule.js';
import { queueBackends } from '../../helpers/queues.js';
import { consumer, signWithDevKey } from '../../helpers/tokens.js';
import { DAY, harness, insertPerson, insertSender, OTHER_SENDER, SENDER } from './fixtures.js';
import { waitFor } from '../../helpers/wait.js';

const ids = syntheticPersonIdList(20, 12_000);

for (const kind of queueBackends()) {
  t.test(`invitations, the development sink and the admin surface on ${kind}`, async (t) => {
    let logs = '';
    const logger = createLogger('notification', 'info', new Writable({ write: (c, _e, cb) => ((logs += String(c)), cb()) }));
    // No SMTP_URL and no SMS_GATEWAY_URL: everything goes to the development sink.
    const h = await harness(t, kind, { env: { INVITATIONS_PER_MINUTE: '12' }, logger });
    const now = () => h.clock.now();
    const send = await h.token({ org: SENDER, scope: 'postbud:send' });
    const admin = await h.token({ org: '991825827', scope: 'postbud:admin' });
    const invite = (personIds: string[], token = send) =>
      h.app.inject({ method: 'POST', url: '/v1/invitations', headers: { authorization: `Bearer ${token}` }, payload: { personIds } });

    await t.test('a result per person; e-mails only to those without mailbox, reservation or stale address', async (t) => {
      await insertPerson(h.db, { personId: ids[0]!, language: 'en', email: 'invite.me@example.no' }, now());
      await insertPerson(h.db, { personId: ids[1]!, reserved: true }, now());
      await insertPerson(h.db, { personId: ids[2]!, email: null }, now());
      await insertPerson(h.db, { personId: ids[3]!, emailUpdatedAt: new Date(monthsBefore(now(), 18).getTime() - DAY) }, now());
      await insertPerson(h.db, { personId: ids[4]! }, now());
      await insertPerson(h.db, { personId: ids[5]!, status: 'DELETED', email: null, mobile: null }, now());
      await sql`insert into providers (orgnr, name, kind, certificate) values ('984661185', 'Digipost', 'digital', '\\x00')`.execute(h.db);
      await sql`insert into mailboxes (person_id, provider_orgnr, address, active) values (${ids[4]!}, '984661185', 'a#1', true)`.execute(h.db);
      const res = await invite([ids[0]!, ids[1]!, ids[2]!, ids[3]!, ids[4]!, ids[5]!, ids[6]!, '12345678901']);
      t.equal(res.statusCode, 200);
      t.same((res.json() as { results: { result: string }[] }).results.map((r) => r.result), [
        'INVITED',
        'RESERVED',
        'NO_EMAIL',
        'EMAIL_EXPIRED',
        'HAS_MAILBOX',
        'DELETED',
        'NOT_REGISTERED',
        'INVALID_PERSON_ID',
      ]);
      const entry = await waitFor('the invitation in the sink', async () => h.ctx.sink.recent(10).find((e) => e.to === 'invite.me@example.no'));
      t.equal(entry.subject, 'Choose a digital mailbox');
      t.match(entry.text, 'Brønnøysundregistrene would like to send you letters digitally');
      t.notMatch(entry.text, /https?:|www\./);
      const again = await invite([ids[0]!]);
      t.same((again.json() as { results: { result: string }[] }).results.map((r) => r.result), ['RECENTLY_INVITED'], 'at most once per cooldown');
    });

    await t.test('the sink: an operator endpoint and a log line without personal data', async (t) => {
      const res = await h.app.inject({ method: 'GET', url: '/v1/dev/alerts?limit=5', headers: { authorization: `Bearer ${admin}` } });
      t.equal(res.statusCode, 200);
      const body = res.json() as { sink: { email: boolean; sms: boolean }; alerts: { to: string }[] };
      t.same(body.sink, { email: true, sms: true });
      t.ok(body.alerts.some((a) => a.to === 'invite.me@example.no'));
      await waitFor('the log line', async () => logs.includes('development sink'));
      t.notMatch(logs, /invite\.me|@example|Brønnøysund|digitally/, 'no address or text in the logs');
      t.notMatch(logs, new RegExp(ids[0]!), 'no personId in the logs');
    });

    await t.test('authorization: scope, tenant, citizen, expiry', async (t) => {
      const missing = await h.app.inject({ method: 'POST', url: '/v1/invitations', payload: { personIds: [ids[8]!] } });
      t.equal(missing.statusCode, 401);
      t.equal((await invite([ids[8]!], await h.token({ org: SENDER, scope: 'postbud:lookup' }))).statusCode, 403, 'needs postbud:send');
      t.equal((await invite([ids[8]!], await h.token({ pid: ids[8]!, acr: 'idporten-loa-high' }))).statusCode, 403, 'not for citizens');
      const expired = await signWithDevKey(h.deps.dataDir, { iss: DEV_ISSUER, aud: h.deps.config.AUTH_AUDIENCE, exp: Math.floor(Date.now() / 1000) - 60, scope: 'postbud:send', consumer: consumer(SENDER) });
      const exp = await invite([ids[8]!], expired);
      t.equal(exp.statusCode, 401);
      t.match(exp.json(), { type: /token-expired$/ });
      const stranger = await invite([ids[8]!], await h.token({ org: OTHER_SENDER, scope: 'postbud:send' }));
      t.equal(stranger.statusCode, 403, 'an org that is not a sender');
      t.match(stranger.json(), { code: 'POSTBUD_NOTIFICATION_SENDER_NOT_REGISTERED' });
      await insertSender(h.db, '971032081', 'Suspended etat', 'suspended');
      const suspended = await invite([ids[8]!], await h.token({ org: '971032081', scope: 'postbud:send' }));
      t.match(suspended.json(), { code: 'POSTBUD_NOTIFICATION_SENDER_SUSPENDED' });
      const bad = await h.app.inject({ method: 'POST', url: '/v1/invitations', headers: { authorization: `Bearer ${send}` }, payload: { personIds: [], extra: 1 } });
      t.equal(bad.statusCode, 400);

      for (const url of ['/v1/admin/queues', '/v1/dev/alerts', '/admin/queues']) {
        t.equal((await h.app.inject({ method: 'GET', url })).statusCode, 401, `${url} needs a token`);
        t.equal((await h.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${send}` } })).statusCode, 403, `${url} needs postbud:admin`);
        const citizen = await h.token({ pid: ids[8]!, acr: 'idporten-loa-high' });
        t.equal((await h.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${citizen}` } })).statusCode, 403, `${url} is not for citizens`);
      }
      const retry = await h.app.inject({ method: 'POST', url: '/v1/admin/queues/alerts-sms/failed/retry', headers: { authorization: `Bearer ${send}` } });
      t.equal(retry.statusCode, 403);
    });

    await t.test('Bull Board behind the admin scope', async (t) => {
      const auth = { authorization: `Bearer ${admin}` };
      const page = await h.app.inject({ method: 'GET', url: '/admin/queues', headers: auth });
      t.equal(page.statusCode, 200);
      t.match(page.headers['content-type'], /html/);
      const api = await h.app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: auth });
      t.equal(api.statusCode, 200);
      t.match(api.body, 'alerts-email');
    });

    await t.test('invitations are rate limited', async (t) => {
      let limited = 0;
      for (let i = 0; i < 15; i++) if ((await invite([ids[10]!])).statusCode === 429) limited++;
      t.ok(limited > 0, '429 once the per-minute budget is spent');
    });
  });
}
