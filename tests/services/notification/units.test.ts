import { Writable } from 'node:stream';
import t from 'tap';
import { loadConfig } from '../../../shared/config/config.js';
import { syntheticPersonIdList } from '../../../shared/ids/person-id.js';
import { createLogger } from '../../../shared/logging/logger.js';
import { QUEUES } from '../../../services/notification/context.js';
import { queueStats } from '../../../services/notification/queue-stats.js';
import { backoffMs } from '../../../services/notification/send.js';
import { retryStrandedJobs, sweepLostJobs } from '../../../services/notification/sweep.js';
import { alertText, hasLink, invitationText, LANGUAGES, pickLanguage, SMS_MAX } from '../../../services/notification/texts.js';
import { DevSink } from '../../../services/notification/transports/sink.js';
import { smsGatewayTransport } from '../../../services/notification/transports/sms-http.js';
import { classifySmtpError, smtpTransport } from '../../../services/notification/transports/smtp.js';
import { PermanentSendError, TransientSendError } from '../../../services/notification/transports/types.js';
import { inWindow, instantOf, nextInWindow } from '../../../services/notification/window.js';
import { startSmtpSink } from '../../harness/alert-peers.js';
import { attempts, harness, insertMessage, insertPerson, settled, deliveryEvent } from './fixtures.js';
import { waitFor } from '../../helpers/wait.js';

const OSLO = { start: 9 * 60, end: 21 * 60, timeZone: 'Europe/Oslo' };

t.test('daytime window in Europe/Oslo, across DST and year ends', async (t) => {
  t.equal(instantOf(2026, 3, 29, 9 * 60, 'Europe/Oslo').toISOString(), '2026-03-29T07:00:00.000Z', 'summer time starts that night');
  t.equal(instantOf(2026, 10, 25, 9 * 60, 'Europe/Oslo').toISOString(), '2026-10-25T08:00:00.000Z', 'winter time');
  t.equal(nextInWindow(new Date('2026-12-31T22:00:00Z'), OSLO).toISOString(), '2027-01-01T08:00:00.000Z');
  t.equal(nextInWindow(new Date('2026-06-10T03:00:00Z'), OSLO).toISOString(), '2026-06-10T07:00:00.000Z', 'early morning: same day');
  t.ok(inWindow(new Date('2026-06-10T18:59:00Z'), OSLO), '20:59 local is inside');
  t.notOk(inWindow(new Date('2026-06-10T19:00:00Z'), OSLO), '21:00 local is outside');
  const always = { start: 0, end: 24 * 60, timeZone: 'Europe/Oslo' };
  t.ok(inWindow(new Date('2026-06-10T23:59:00Z'), always));
});

t.test('window settings are validated', async (t) => {
  t.throws(() => loadConfig({ NOTIFY_WINDOW_START: '25:00' }), /NOTIFY_WINDOW_START: must be a time HH:MM/);
  t.throws(() => loadConfig({ NOTIFY_WINDOW_END: '24:30' }), /NOTIFY_WINDOW_END/);
  t.throws(() => loadConfig({ NOTIFY_TIME_ZONE: 'Mars/Olympus' }), /not a known time zone/);
  t.equal(loadConfig({ NOTIFY_WINDOW_END: '24:00' }).NOTIFY_WINDOW_END, 1440);
});

t.test('group commit: concurrent items share a batch, and a bad item fails alone', async (t) => {
  const { Group } = await import('../../../services/notification/group.js');
  const batches: number[][] = [];
  const g = new Group<number, number>(async (items) => {
    batches.push(items);
    if (items.includes(13)) throw new Error('bad item');
    return items.map((i) => i * 2);
  });
  const results = await Promise.allSettled([1, 2, 13, 4].map((i) => g.add(i)));
  t.same(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)), [2, 4, 'bad item', 8]);
  t.same(batches[0], [1], 'a lone item runs at once');
  t.same(batches[1], [2, 13, 4], 'items arriving meanwhile share the next batch');
  t.same(batches.slice(2).sort(), [[13], [2], [4]].sort(), 'the failed batch is run again item by item');
  t.same(await g.add(5), 10, 'and the group goes on');
});

t.test('texts', async (t) => {
  t.equal(pickLanguage(null, 'xx', undefined), 'nb');
  t.equal(pickLanguage(undefined, 'se'), 'se');
  const long = 'T'.repeat(255);
  for (const language of LANGUAGES) {
    const sms = alertText({ channel: 'sms', language, senderName: 'Statens vegvesen', title: long });
    t.ok(sms.body.length <= SMS_MAX, `${language}: SMS within 160`);
    t.match(sms.body, 'Statens vegvesen');
    t.match(sms.body, '…');
    const inv = invitationText(language, 'NAV');
    t.notOk(hasLink(inv.body), `${language}: invitation without links`);
    t.match(inv.body, 'NAV');
  }
  t.ok(hasLink('Les mer på https://phish.example'));
  t.ok(hasLink('gå til nav.no'));
  const linked = alertText({ channel: 'email', language: 'nb', senderName: 'NAV', title: 'Vedtak', custom: 'Klikk www.example.com' });
  t.match(linked.body, 'Du har fått et brev fra NAV', 'a sender text with a link is replaced by the default');
  const custom = alertText({ channel: 'sms', language: 'nb', senderName: 'NAV', title: 'Vedtak', custom: 'x'.repeat(300) });
  t.equal(custom.body.length, SMS_MAX);
  t.equal(backoffMs(1000, 1, () => 0), 500);
  t.equal(backoffMs(1000, 4, () => 0.999_999), 8000);
  t.equal(backoffMs(3_600_000, 10, () => 0), 3 * 3600_000, 'capped at 6 h');
});

t.test('transport error classes', async (t) => {
  t.type(classifySmtpError({ responseCode: 550 }), PermanentSendError);
  t.type(classifySmtpError({ code: 'EENVELOPE' }), PermanentSendError);
  t.type(classifySmtpError({ responseCode: 421 }), TransientSendError);
  t.type(classifySmtpError({ code: 'ECONNECTION' }), TransientSendError);
  // Outcome unknown (flagged ambiguous when retried) only when the message may have left.
  const ambiguous = (e: unknown) => (classifySmtpError(e) as TransientSendError).ambiguous;
  t.equal(ambiguous({ responseCode: 421 }), false, 'the server answered: nothing accepted');
  t.equal(ambiguous({ code: 'ESOCKET', originalCode: 'ECONNREFUSED' }), false, 'never connected');
  t.equal(ambiguous({ code: 'ETIMEDOUT', timeoutType: 'GREETING_TIMEOUT' }), false, 'no session yet');
  t.equal(ambiguous({ code: 'ETIMEDOUT', timeoutType: 'SOCKET_TIMEOUT' }), true, 'silence mid-session');
  t.equal(ambiguous({ code: 'ECONNECTION', command: 'CONN' }), true, 'connection lost, perhaps after the final dot');
  const refused = smsGatewayTransport({ url: 'http://127.0.0.1:1/sms', sender: 'x', timeoutMs: 500, maxSockets: 1 });
  const err = await refused.send({ key: 'k', to: '+4790000000', text: 'hei' }).catch((e: unknown) => e);
  t.type(err, TransientSendError);
  t.equal((err as TransientSendError).ambiguous, false, 'connection refused: the request never left');
  await refused.close();
});

t.test('SMTP with STARTTLS and AUTH', async (t) => {
  const sink = await startSmtpSink({ tls: true, auth: { user: 'hub', pass: 's3cret' } });
  t.teardown(() => sink.close());
  const ok = smtpTransport({ url: sink.url, user: 'hub', password: 's3cret', requireTls: true, rejectUnauthorized: false, poolSize: 1, from: 'postbud <varsel@postbud.invalid>' });
  t.teardown(() => ok.close());
  const res = await ok.send({ key: 'tls-1', to: 'kari@example.no', subject: 'Hei', text: 'Du har post' });
  t.equal(res.ref, '<tls-1@alerts.postbud>');
  t.equal(sink.mails[0]!.text, 'Du har post');
  const wrong = smtpTransport({ url: sink.url.replace('smtp://', 'smtp://hub:wrong@'), requireTls: true, rejectUnauthorized: false, poolSize: 1, from: 'x@y.no' });
  t.teardown(() => wrong.close());
  await t.rejects(wrong.send({ key: 'tls-2', to: 'kari@example.no', subject: 'Hei', text: 'x' }), PermanentSendError, 'bad credentials: 535');
  const unverified = smtpTransport({ url: sink.url, requireTls: true, rejectUnauthorized: true, poolSize: 1, from: 'x@y.no' });
  t.teardown(() => unverified.close());
  await t.rejects(unverified.send({ key: 'tls-3', to: 'kari@example.no', subject: 'Hei', text: 'x' }), TransientSendError, 'self-signed certificate refused');
});

t.test('the development sink keeps the newest, once per key', async (t) => {
  let logs = '';
  const sink = new DevSink(2, createLogger('t', 'info', new Writable({ write: (c, _e, cb) => ((logs += String(c)), cb()) })));
  await sink.emailTransport().send({ key: 'a', to: 'a@example.no', subject: 's', text: 'x' });
  await sink.smsTransport().send({ key: 'b', to: '+4790000000', text: 'y' });
  await sink.smsTransport().send({ key: 'b', to: '+4790000000', text: 'y' });
  await sink.smsTransport().send({ key: 'c', to: '+4790000001', text: 'z' });
  t.same(sink.recent(10).map((e) => e.key), ['c', 'b']);
  t.equal(sink.count, 2);
  t.equal(logs.split('\n').filter(Boolean).length, 3, 'one log line per alert, none for the resend');
  t.notMatch(logs, /example|\+47/);
});

t.test('the sweeper re-queues an overdue alert whose job was lost; queue stats', async (t) => {
  const h = await harness(t, 'postgres', { workers: false });
  const [pid] = syntheticPersonIdList(1, 33_000);
  await insertPerson(h.db, { personId: pid! }, h.clock.now());
  const id = await insertMessage(h.db, { personId: pid!, notifications: { email: {}, repeatAfterDays: [0] } }, h.clock.now());
  const { scheduleAlerts } = await import('../../../services/notification/schedule.js');
  t.same(await scheduleAlerts(h.ctx, [id]), [1]);
  const [row] = await attempts(h, id);
  await h.relay.drain();
  const queue = h.ctx.queues.queue(QUEUES.email);
  await waitFor('the job', async () => (await queue.getJob(row!.job_id!)) !== undefined);
  const stats = await queueStats(h.ctx);
  t.equal(stats.find((s) => s.name === QUEUES.email)!.waiting, 1);
  t.ok(stats.find((s) => s.name === QUEUES.email)!.oldestWaitingSeconds >= 0);
  t.equal(await sweepLostJobs(h.ctx), 0, 'not overdue yet');
  h.clock.advance(10 * 60_000);
  t.equal(await sweepLostJobs(h.ctx), 0, 'overdue, but its job is still there');
  await queue.remove(row!.job_id!);
  t.equal(await sweepLostJobs(h.ctx), 1, 'the lost job is queued again');
  const swept = (await attempts(h, id))[0]!;
  t.match(swept.job_id, /^sweep-/);
  t.ok(await queue.getJob(swept.job_id!));
});

t.test('jobs that failed while Postgres or the queue was away run again; alerts closed on purpose do not', async (t) => {
  const h = await harness(t, 'postgres', { workers: false });
  const pids = syntheticPersonIdList(2, 36_000);
  for (const p of pids) await insertPerson(h.db, { personId: p }, h.clock.now());
  const open = await insertMessage(h.db, { personId: pids[0]!, notifications: { email: {}, repeatAfterDays: [0] } }, h.clock.now());
  const refused = await insertMessage(h.db, { personId: pids[1]!, notifications: { email: {}, repeatAfterDays: [0] } }, h.clock.now());
  const { scheduleAlerts } = await import('../../../services/notification/schedule.js');
  await scheduleAlerts(h.ctx, [open, refused]);
  const [openRow] = await attempts(h, open);
  const [refusedRow] = await attempts(h, refused);
  await h.db.updateTable('notification_attempts').set({ state: 'FAILED', reason: 'REJECTED: SMTP 550' }).where('id', '=', refusedRow!.id).execute();
  const events = h.ctx.queues.queue(QUEUES.events);
  await events.add('delivery-event', { messageId: open, type: 'DELIVERED' }, { jobId: 'stranded-event' });
  await h.relay.drain();
  // Every job fails as it would with the database gone.
  const failing = [QUEUES.email, QUEUES.events].map((q) => h.ctx.queues.worker(q, async () => Promise.reject(new Error('connect ECONNREFUSED')), { concurrency: 5 }));
  const email = h.ctx.queues.queue(QUEUES.email);
  await waitFor('the failed jobs', async () => (await email.getFailedCount()) === 2 && (await events.getFailedCount()) === 1);
  await Promise.all(failing.map((w) => w.close()));

  t.equal(await retryStrandedJobs(h.ctx), 2, 'the open alert and the delivery event');
  t.equal(await (await email.getJob(openRow!.job_id!))!.getState(), 'waiting', 'the open alert runs again');
  t.equal(await (await email.getJob(refusedRow!.job_id!))!.getState(), 'failed', 'an alert its peer refused stays failed for operators');
  t.equal(await (await events.getJob('stranded-event'))!.getState(), 'waiting');
  t.equal(await retryStrandedJobs(h.ctx), 0, 'nothing left to retry');
});

t.test('DELIVERED events scheduled together: one row and one job per alert, nothing twice', async (t) => {
  const h = await harness(t, 'postgres', { workers: false });
  const pids = syntheticPersonIdList(3, 35_000);
  for (const p of pids) await insertPerson(h.db, { personId: p }, h.clock.now());
  const both = await insertMessage(h.db, { personId: pids[0]!, notifications: { email: {}, sms: {}, repeatAfterDays: [0, 3] } }, h.clock.now());
  const smsOnly = await insertMessage(h.db, { personId: pids[1]!, notifications: { sms: {}, repeatAfterDays: [] } }, h.clock.now());
  const none = await insertMessage(h.db, { personId: pids[2]!, notifications: null }, h.clock.now());
  const { scheduleAlerts } = await import('../../../services/notification/schedule.js');
  const unknown = '00000000-0000-4000-8000-000000000000';
  t.same(await scheduleAlerts(h.ctx, [both, smsOnly, none, unknown, 'not-a-uuid']), [4, 2, 0, 0, 0], 'no repetitions given: the default [0, 7] for the SMS-only letter');
  t.same(await scheduleAlerts(h.ctx, [smsOnly.toUpperCase(), both]), [0, 0], 'a redelivered event schedules nothing');
  const rows = await attempts(h, both);
  t.same(rows.map((r) => `${r.channel}/${r.repetition}/${r.after_days}`).sort(), ['email/0/0', 'email/1/3', 'sms/0/0', 'sms/1/3']);
  const jobs = await h.db.selectFrom('outbox').select(['id', 'queue', 'payload', 'delay_ms']).orderBy('id').execute();
  t.equal(jobs.length, 6, 'one outbox job per scheduled alert');
  const all = [...rows, ...(await attempts(h, smsOnly))];
  for (const r of all) {
    const job = jobs.find((j) => `outbox-${j.id}` === r.job_id);
    t.ok(job, 'each row knows its job');
    t.equal(job!.queue, r.channel === 'email' ? QUEUES.email : QUEUES.sms);
    t.same(job!.payload, { attemptId: r.id, dueAt: r.due_at.toISOString() });
    t.equal(job!.delay_ms, Math.max(0, r.due_at.getTime() - h.clock.now().getTime()));
  }
});

t.test('a job for a row already sent, or run twice, sends nothing more', async (t) => {
  const sink = await startSmtpSink();
  t.teardown(() => sink.close());
  const h = await harness(t, 'postgres', { env: { SMTP_URL: sink.url, SMTP_REQUIRE_TLS: 'false' } });
  const [pid] = syntheticPersonIdList(1, 34_000);
  await insertPerson(h.db, { personId: pid!, mobile: null }, h.clock.now());
  const id = await insertMessage(h.db, { personId: pid!, notifications: { email: {}, repeatAfterDays: [0] } }, h.clock.now());
  await deliveryEvent(h, id, 'DELIVERED');
  const [row] = await settled(h, id);
  // The same alert again: a redelivered DELIVERED event and a duplicate job.
  await deliveryEvent(h, id, 'DELIVERED');
  await h.ctx.queues.queue(QUEUES.email).add('alert', { attemptId: row!.id }, { jobId: `dup-${row!.id}` });
  await waitFor('the duplicate job', async () => (await h.ctx.queues.queue(QUEUES.email).getJob(`dup-${row!.id}`))?.finishedOn);
  t.equal((await attempts(h, id)).length, 1);
  t.equal(sink.mails.length, 1);
  t.same([...sink.transmissions.values()], [1], 'transmitted once: a committed alert is never sent again');
});
