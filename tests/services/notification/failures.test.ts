import t from 'tap';
import { syntheticPersonIdList } from '../../../shared/ids/person-id.js';
import { monthsBefore } from '../../../shared/registry/contact-rule.js';
import { startSmsGateway, startSmtpSink } from '../../harness/alert-peers.js';
import { queueBackends } from '../../helpers/queues.js';
import { DAY, decodeJws, deliveryEvent, events, harness, insertMessage, insertPerson, promoteDelayed, receipts, settled } from './fixtures.js';
import { waitFor } from '../../helpers/wait.js';

const ids = syntheticPersonIdList(40, 9100);

for (const kind of queueBackends()) {
  t.test(`failures on ${kind}`, async (t) => {
    const smtp = await startSmtpSink({ tempfailTimes: 3 });
    const sms = await startSmsGateway({ failTimes: 2 });
    t.teardown(() => Promise.all([smtp.close(), sms.close()]));
    const h = await harness(t, kind, { env: { SMTP_URL: smtp.url, SMTP_REQUIRE_TLS: 'false', SMS_GATEWAY_URL: sms.url, SMS_TIMEOUT_MS: '200' } });
    const now = () => h.clock.now();
    const failedReceipts = async (id: string) =>
      (await receipts(h, id))
        .filter((r) => r.type === 'NOTIFICATION_FAILED')
        .map((r) => decodeJws(r.jws).data as Record<string, string>)
        .sort((a, b) => `${a.channel}${a.repetition}`.localeCompare(`${b.channel}${b.repetition}`));

    await t.test('the 18-month rule at send time: stale contact points are not used, the sender is told why', async (t) => {
      const stale = new Date(monthsBefore(now(), 18).getTime() - DAY);
      await insertPerson(h.db, { personId: ids[0]!, email: 'old@example.no', emailUpdatedAt: stale, mobile: '+4790001000', mobileUpdatedAt: stale, mobileVerifiedAt: new Date(now().getTime() - 30 * DAY) }, now());
      const id = await insertMessage(h.db, { personId: ids[0]!, notifications: { email: {}, sms: {}, repeatAfterDays: [0] } }, now());
      await deliveryEvent(h, id, 'DELIVERED');
      const rows = await settled(h, id);
      t.same(rows.map((r) => [r.channel, r.state, r.reason]), [['email', 'SKIPPED', 'CONTACT_POINT_EXPIRED'], ['sms', 'SENT', null]], 'verified within 18 months counts');
      t.notOk(smtp.mails.some((m) => m.to === 'old@example.no'));
      t.match(await failedReceipts(id), [{ channel: 'email', repetition: 0, reason: 'CONTACT_POINT_EXPIRED' }]);
    });

    await t.test('a contact point that expires between two repetitions is used for the first only', async (t) => {
      const updated = new Date(monthsBefore(now(), 18).getTime() + 2 * DAY);
      await insertPerson(h.db, { personId: ids[1]!, email: 'aging@example.no', emailUpdatedAt: updated, mobile: null }, now());
      const id = await insertMessage(h.db, { personId: ids[1]!, notifications: { email: {}, sms: {}, repeatAfterDays: [0, 5] } }, now());
      await deliveryEvent(h, id, 'DELIVERED');
      await settled(h, id, 2);
      h.clock.advance(5 * DAY);
      await promoteDelayed(h);
      const rows = await settled(h, id);
      t.same(rows.map((r) => [r.channel, r.repetition, r.state, r.reason]), [
        ['email', 0, 'SENT', null],
        ['email', 1, 'SKIPPED', 'CONTACT_POINT_EXPIRED'],
        ['sms', 0, 'SKIPPED', 'NO_CONTACT_POINT'],
        ['sms', 1, 'SKIPPED', 'NO_CONTACT_POINT'],
      ]);
      t.equal((await failedReceipts(id)).length, 3, 'one receipt per channel and repetition not sent');
      h.clock.set('2026-01-14T11:00:00Z');
    });

    await t.test('reserved and deleted persons get no alerts', async (t) => {
      await insertPerson(h.db, { personId: ids[2]!, reserved: true }, now());
      await insertPerson(h.db, { personId: ids[3]!, status: 'DELETED' }, now());
      const a = await insertMessage(h.db, { personId: ids[2]!, notifications: { email: {}, repeatAfterDays: [0] } }, now());
      const b = await insertMessage(h.db, { personId: ids[3]!, notifications: { sms: {}, repeatAfterDays: [0] } }, now());
      const c = await insertMessage(h.db, { personId: ids[4]!, notifications: { sms: {}, repeatAfterDays: [0] } }, now());
      for (const id of [a, b, c]) await deliveryEvent(h, id, 'DELIVERED');
      t.equal((await settled(h, a))[0]!.reason, 'RESERVED');
      t.equal((await settled(h, b))[0]!.reason, 'NOT_ACTIVE');
      t.equal((await settled(h, c))[0]!.reason, 'NOT_ACTIVE', 'not in the registry at all');
    });

    await t.test('messages without alerts, print letters and unknown ids schedule nothing', async (t) => {
      await insertPerson(h.db, { personId: ids[5]! }, now());
      const none = await insertMessage(h.db, { personId: ids[5]!, notifications: null }, now());
      const print = await insertMessage(h.db, { personId: ids[5]!, route: 'PRINT' }, now());
      const empty = await insertMessage(h.db, { personId: ids[5]!, notifications: { repeatAfterDays: [0] } }, now());
      const { handleDeliveryEvent } = await import('../../../services/notification/workers.js');
      for (const id of [none, print, empty, '00000000-0000-4000-8000-000000000000']) t.equal(await handleDeliveryEvent(h.ctx, { messageId: id, type: 'DELIVERED' }), 0);
      t.equal(await handleDeliveryEvent(h.ctx, { messageId: none, type: 'FAILED' as never }), 0);
    });

    await t.test('permanent failures: SMTP 550 and SMS 400 fail at once with a receipt', async (t) => {
      await insertPerson(h.db, { personId: ids[6]!, email: 'reject@example.no', mobile: '+4790000400' }, now());
      const id = await insertMessage(h.db, { personId: ids[6]!, notifications: { email: {}, sms: {}, repeatAfterDays: [0] } }, now());
      await deliveryEvent(h, id, 'DELIVERED');
      const rows = await settled(h, id);
      t.same(rows.map((r) => [r.state, r.tries]), [['FAILED', 1], ['FAILED', 1]]);
      t.match(rows[0]!.reason, /^REJECTED: SMTP 550/);
      t.match(rows[1]!.reason, /^REJECTED: SMS gateway 400/);
      t.match(await failedReceipts(id), [{ channel: 'email', reason: 'REJECTED' }, { channel: 'sms', reason: 'REJECTED' }]);
      t.notOk((await events(h, id)).some((e) => e.type === 'NOTIFIED'));
    });

    await t.test('transient failures are retried with backoff: SMS 503 twice, then sent', async (t) => {
      await insertPerson(h.db, { personId: ids[7]!, email: null, mobile: '+4790000503' }, now());
      const id = await insertMessage(h.db, { personId: ids[7]!, notifications: { sms: {}, repeatAfterDays: [0] } }, now());
      await deliveryEvent(h, id, 'DELIVERED');
      const [row] = await settled(h, id);
      t.same([row!.state, row!.tries], ['SENT', 3]);
      t.equal(sms.requests.get(row!.id), 3);
      t.equal(sms.messages.filter((m) => m.reference === row!.id).length, 1);
    });

    await t.test('HTTP 429 slows the whole SMS queue down without using up tries', async (t) => {
      await insertPerson(h.db, { personId: ids[8]!, email: null, mobile: '+4790000429' }, now());
      const id = await insertMessage(h.db, { personId: ids[8]!, notifications: { sms: {}, repeatAfterDays: [0] } }, now());
      await deliveryEvent(h, id, 'DELIVERED');
      const [row] = await settled(h, id);
      t.same([row!.state, row!.tries], ['SENT', 1]);
      t.equal(sms.requests.get(row!.id), 2);
    });

    let exhaustedJob = '';
    await t.test('after the last try: FAILED with a NOTIFICATION_FAILED receipt (SMTP 451, gateway timeouts)', async (t) => {
      await insertPerson(h.db, { personId: ids[9]!, email: 'tempfail@example.no', mobile: '+4790000999' }, now());
      const id = await insertMessage(h.db, { personId: ids[9]!, notifications: { email: {}, sms: {}, repeatAfterDays: [0] } }, now());
      await deliveryEvent(h, id, 'DELIVERED');
      const rows = await settled(h, id);
      t.same(rows.map((r) => [r.state, r.tries]), [['FAILED', 3], ['FAILED', 3]]);
      t.match(rows[0]!.reason, /^RETRIES_EXHAUSTED: SMTP 451/);
      t.match(rows[1]!.reason, /^RETRIES_EXHAUSTED: SMS gateway timeout/);
      t.match(await failedReceipts(id), [{ channel: 'email', reason: 'RETRIES_EXHAUSTED' }, { channel: 'sms', reason: 'RETRIES_EXHAUSTED' }]);
      exhaustedJob = rows[0]!.job_id!;
    });

    await t.test('operators list failed jobs and retry them', async (t) => {
      const admin = await h.token({ org: '991825827', scope: 'postbud:admin' });
      const auth = { authorization: `Bearer ${admin}` };
      const failed = await waitFor('failed jobs', async () => {
        const res = await h.app.inject({ method: 'GET', url: '/v1/admin/queues/alerts-email/failed', headers: auth });
        const jobs = (res.json() as { jobs: { id: string; attemptId: string; messageId: string | null; failedReason: string }[] }).jobs;
        return jobs.some((j) => j.id === exhaustedJob) ? jobs : undefined;
      });
      t.ok(failed.every((j) => !JSON.stringify(j).includes('@')), 'no addresses in the failed list');
      t.ok(failed.every((j) => j.messageId !== null), 'each failed alert names its letter');
      const exhausted = await h.db.selectFrom('notification_attempts').select('message_id').where('job_id', '=', exhaustedJob).executeTakeFirstOrThrow();
      t.equal(failed.find((j) => j.id === exhaustedJob)?.messageId, exhausted.message_id);
      const stats = await h.app.inject({ method: 'GET', url: '/v1/admin/queues', headers: auth });
      t.ok((stats.json() as { queues: { name: string; failed: number }[] }).queues.find((q) => q.name === 'alerts-email')!.failed >= 2);
      const metrics = await h.app.inject({ method: 'GET', url: '/metrics' });
      t.match(metrics.body, /notification_queue_jobs\{queue="alerts-email",state="failed",service="notification"\} [1-9]/);
      t.match(metrics.body, /notification_queue_oldest_waiting_seconds\{queue="alerts-sms"/);
      t.match(metrics.body, /notification_alerts_total\{channel="email",outcome="sent"/);

      const retry = await h.app.inject({ method: 'POST', url: `/v1/admin/queues/alerts-email/failed/${exhaustedJob}/retry`, headers: auth });
      t.equal(retry.statusCode, 200);
      const row = await waitFor('the retried alert', async () => {
        const r = await h.db.selectFrom('notification_attempts').selectAll().where('job_id', '=', exhaustedJob).executeTakeFirst();
        return r?.state === 'SENT' ? r : undefined;
      });
      t.equal(row.tries, 1, 'tries start over');
      t.ok(smtp.mails.some((m) => m.to === 'tempfail@example.no'));
      const again = await h.app.inject({ method: 'POST', url: `/v1/admin/queues/alerts-email/failed/${exhaustedJob}/retry`, headers: auth });
      t.equal(again.statusCode, 409, 'only failed jobs');
      const missing = await h.app.inject({ method: 'POST', url: '/v1/admin/queues/alerts-email/failed/nope/retry', headers: auth });
      t.equal(missing.statusCode, 404);
      const unknown = await h.app.inject({ method: 'GET', url: '/v1/admin/queues/other/failed', headers: auth });
      t.equal(unknown.statusCode, 400);
      const all = await h.app.inject({ method: 'POST', url: '/v1/admin/queues/alerts-sms/failed/retry', headers: auth });
      t.ok((all.json() as { retried: number }).retried >= 1);
    });
  });
}
