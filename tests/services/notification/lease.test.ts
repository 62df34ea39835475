/**
 * The claim lease under slowness (issue 16.1): a worker still sending keeps its claim, so a peer
 * slower than the lease gets the alert once; a send given up on (timeout) is retried under the
 * same key and flagged ambiguous. The peers hold their answer at a control point, so nothing here
 * depends on how fast the machine is.
 */
import { sql } from 'kysely';
import t from 'tap';
import { syntheticPersonIdList } from '../../../shared/ids/person-id.js';
import { startSmsGateway, startSmtpSink } from '../../harness/alert-peers.js';
import { waitFor } from '../../helpers/wait.js';
import { deliveryEvent, harness, insertMessage, insertPerson, settled, type Harness } from './fixtures.js';

const ids = syntheticPersonIdList(3, 9400);

function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

async function attemptRow(h: Harness, id: string) {
  return h.db.selectFrom('notification_attempts').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

async function metrics(h: Harness): Promise<string> {
  return (await h.app.inject({ method: 'GET', url: '/metrics' })).body;
}

t.test('a send slower than the lease keeps its claim and is transmitted exactly once', async (t) => {
  const arrived = deferred<string>();
  const release = deferred();
  t.teardown(() => release.resolve());
  const sms = await startSmsGateway({
    hold: (m, n) => {
      if (n > 1) return undefined;
      arrived.resolve(m.reference);
      return release.promise;
    },
  });
  t.teardown(() => sms.close());
  const h = await harness(t, 'postgres', {
    env: { SMS_GATEWAY_URL: sms.url, NOTIFY_CLAIM_LEASE_MS: '1000', NOTIFY_SEND_TIMEOUT_MS: '30000', SMS_TIMEOUT_MS: '30000' },
  });
  await insertPerson(h.db, { personId: ids[0]!, email: null, mobile: '+4790001111' }, h.clock.now());
  const messageId = await insertMessage(h.db, { personId: ids[0]!, notifications: { sms: {}, repeatAfterDays: [0] } }, h.clock.now());
  await deliveryEvent(h, messageId, 'DELIVERED');

  const attemptId = await arrived.promise;
  const first = await attemptRow(h, attemptId);
  // The peer answers only after lease + 1 s: well past the point where an unrenewed claim could be taken over.
  await waitFor('lease + 1 s of sending', async () => {
    const { rows } = await sql<{ over: boolean }>`select now() - ${first.claimed_at}::timestamptz > interval '2 seconds' as over`.execute(h.db);
    return rows[0]!.over;
  });
  // What a stalled job's redelivery or the sweeper does: a second job for the same attempt.
  const queue = h.ctx.queues.queue('alerts-sms');
  const rival = await queue.add('alert', { attemptId }, { jobId: `rival-${attemptId}` });
  const rivalState = await waitFor('the second job to meet the claim', async () => {
    const s = await (await queue.getJob(rival.id!))?.getState();
    return s === 'delayed' || s === 'completed' ? s : undefined;
  });
  t.equal(rivalState, 'delayed', 'the second job found the claim live and went back to sleep');
  const during = await attemptRow(h, attemptId);
  t.equal(during.state, 'SENDING');
  t.equal(during.claim_token, first.claim_token, 'still the first claim');
  t.ok(during.claimed_at!.getTime() > first.claimed_at!.getTime(), 'the lease was renewed while the send ran');

  release.resolve();
  const [done] = await settled(h, messageId);
  t.same([done!.state, done!.tries, done!.ambiguous], ['SENT', 1, false]);
  await waitFor('the second job to finish', async () => (await (await queue.getJob(rival.id!))?.getState()) === 'completed');
  t.equal(sms.requests.get(attemptId), 1, 'one request at the gateway');
  t.equal(sms.messages.length, 1);
  t.match(await metrics(h), /notification_ambiguous_attempts\{channel="sms"[^}]*\} 0\n/);
});

t.test('an SMS send that times out and is retried is flagged ambiguous and counted', async (t) => {
  const release = deferred();
  t.teardown(() => release.resolve());
  // The first request reaches the gateway and is never answered while the client waits.
  const sms = await startSmsGateway({ hold: (_m, n) => (n === 1 ? release.promise : undefined) });
  t.teardown(() => sms.close());
  const h = await harness(t, 'postgres', { env: { SMS_GATEWAY_URL: sms.url, SMS_TIMEOUT_MS: '300' } });
  await insertPerson(h.db, { personId: ids[1]!, email: null, mobile: '+4790002222' }, h.clock.now());
  const messageId = await insertMessage(h.db, { personId: ids[1]!, notifications: { sms: {}, repeatAfterDays: [0] } }, h.clock.now());
  await deliveryEvent(h, messageId, 'DELIVERED');

  const [done] = await settled(h, messageId);
  t.same([done!.state, done!.tries, done!.ambiguous], ['SENT', 2, true], 'sent on the second try, flagged ambiguous');
  t.equal(sms.requests.get(done!.id), 2, 'transmitted again, under the same reference');
  t.equal(sms.messages.length, 1, 'the gateway deduplicated it');
  const m = await metrics(h);
  t.match(m, /notification_ambiguous_attempts\{channel="sms"[^}]*\} 1\n/);
  t.match(m, /notification_ambiguous_sends_total\{channel="sms",cause="timeout"[^}]*\} 1\n/);
});

t.test('an e-mail whose send is given up on while the server holds it is flagged ambiguous', async (t) => {
  const release = deferred();
  t.teardown(() => release.resolve());
  const smtp = await startSmtpSink({ hold: (_m, n) => (n === 1 ? release.promise : undefined) });
  t.teardown(() => smtp.close());
  const h = await harness(t, 'postgres', { env: { SMTP_URL: smtp.url, SMTP_REQUIRE_TLS: 'false', NOTIFY_SEND_TIMEOUT_MS: '300' } });
  await insertPerson(h.db, { personId: ids[2]!, email: 'slow@example.no', mobile: null }, h.clock.now());
  const messageId = await insertMessage(h.db, { personId: ids[2]!, notifications: { email: {}, repeatAfterDays: [0] } }, h.clock.now());
  await deliveryEvent(h, messageId, 'DELIVERED');

  const [done] = await settled(h, messageId);
  release.resolve();
  t.same([done!.state, done!.tries, done!.ambiguous], ['SENT', 2, true]);
  t.equal(smtp.transmissions.get(`<${done!.id}@alerts.postbud>`), 2, 'two transmissions under one Message-ID');
  t.equal(smtp.mails.length, 1, 'one mail in the store');
  t.match(await metrics(h), /notification_ambiguous_sends_total\{channel="email",cause="timeout"[^}]*\} 1\n/);
});
