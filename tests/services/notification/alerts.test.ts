import t from 'tap';
import { QUEUES } from '../../../services/notification/context.js';
import { syntheticPersonIdList } from '../../../shared/ids/person-id.js';
import { startSmsGateway, startSmtpSink } from '../../harness/alert-peers.js';
import { queueBackends } from '../../helpers/queues.js';
import { attempts, DAY, decodeJws, deliveryEvent, delayedCount, events, harness, insertMessage, insertPerson, promoteDelayed, receipts, SENDER_NAME, settled } from './fixtures.js';
import { waitFor } from '../../helpers/wait.js';

const ids = syntheticPersonIdList(40, 7000);

for (const kind of queueBackends()) {
  t.test(`alerts on ${kind}`, async (t) => {
    const smtp = await startSmtpSink();
    const sms = await startSmsGateway({ auth: `Basic ${Buffer.from('gw:secret').toString('base64')}` });
    t.teardown(() => Promise.all([smtp.close(), sms.close()]));
    const h = await harness(t, kind, {
      env: { SMTP_URL: smtp.url, SMTP_REQUIRE_TLS: 'false', SMS_GATEWAY_URL: sms.url, SMS_GATEWAY_USER: 'gw', SMS_GATEWAY_PASSWORD: 'secret' },
    });
    const now = () => h.clock.now();

    await t.test('language defaults, sender texts, NOTIFIED once with a signed receipt', async (t) => {
      await insertPerson(h.db, { personId: ids[0]!, language: 'nn', email: 'kari@example.no', mobile: '+4791234567' }, now());
      const id = await insertMessage(h.db, { personId: ids[0]!, title: 'Vedtak om bustøtte', notifications: { email: {}, sms: { text: 'Du har post frå kommunen.' }, repeatAfterDays: [0] } }, now());
      await deliveryEvent(h, id, 'DELIVERED');
      const rows = await settled(h, id);
      t.same(rows.map((r) => [r.channel, r.repetition, r.state]), [['email', 0, 'SENT'], ['sms', 0, 'SENT']]);
      const mail = smtp.mails.find((m) => m.to === 'kari@example.no')!;
      t.equal(mail.subject, 'Du har fått digital post');
      t.match(mail.text, `frå ${SENDER_NAME}: «Vedtak om bustøtte»`);
      t.notMatch(mail.text, /https?:|www\./, 'never a link');
      t.equal(mail.messageId, `<${rows[0]!.id}@alerts.postbud>`, 'the Message-ID is the attempt id');
      const text = sms.messages.find((m) => m.to === '+4791234567')!;
      t.equal(text.text, 'Du har post frå kommunen.', "the sender's own SMS text");
      t.equal(text.reference, rows[1]!.id);
      t.ok(sms.authorizations.has(`Basic ${Buffer.from('gw:secret').toString('base64')}`), 'gateway credentials from config');
      const ev = await events(h, id);
      t.same(ev.map((e) => e.type), ['DELIVERED', 'NOTIFIED'], 'one NOTIFIED for two channels');
      t.equal(ev[1]!.at.toISOString(), now().toISOString(), 'NOTIFIED carries the time of the alert');
      const notified = (await receipts(h, id)).find((r) => r.type === 'NOTIFIED')!;
      t.match(decodeJws(notified.jws), { type: 'NOTIFIED', messageId: id, data: { notifiedAt: now().toISOString() } });
    });

    for (const [language, subject, phrase] of [
      ['nb', 'Du har fått digital post', 'Du har fått et brev fra'],
      ['en', 'You have received digital mail', 'You have a letter from'],
      ['se', 'Don leat ožžon digitála poastta', 'Don leat ožžon reivve'],
    ] as const) {
      await t.test(`default texts in ${language}`, async (t) => {
        const pid = ids[language === 'nb' ? 1 : language === 'en' ? 2 : 3]!;
        await insertPerson(h.db, { personId: pid, language: null, email: `${language}@example.no`, mobile: `+47900000${language === 'nb' ? 11 : language === 'en' ? 12 : 13}` }, now());
        const id = await insertMessage(h.db, { personId: pid, language, title: 'Skattemelding', notifications: { email: {}, sms: {}, repeatAfterDays: [0] } }, now());
        await deliveryEvent(h, id, 'DELIVERED');
        await settled(h, id);
        const mail = smtp.mails.find((m) => m.to === `${language}@example.no`)!;
        t.equal(mail.subject, subject);
        t.match(mail.text, phrase);
        t.match(mail.text, SENDER_NAME);
        const text = sms.messages.find((m) => m.to.endsWith(language === 'nb' ? '11' : language === 'en' ? '12' : '13'))!;
        t.ok(text.text.length <= 160);
        t.match(text.text, 'Skattemelding');
      });
    }

    await t.test('the daytime window: an alert due at night waits for the morning', async (t) => {
      h.clock.set('2026-01-14T21:30:00Z'); // 22:30 in Oslo
      await insertPerson(h.db, { personId: ids[5]!, email: 'night@example.no', mobile: null }, now());
      const id = await insertMessage(h.db, { personId: ids[5]!, notifications: { email: {}, repeatAfterDays: [0] } }, now());
      await deliveryEvent(h, id, 'DELIVERED');
      await waitFor('the alert to be scheduled', async () => (await attempts(h, id)).length === 1 && (await delayedCount(h)) >= 1);
      const [row] = await attempts(h, id);
      t.equal(row!.due_at.toISOString(), '2026-01-15T08:00:00.000Z', '09:00 Oslo the next morning');
      // Promoted early (real time has not waited): still night on the clock, so it goes back to sleep.
      await promoteDelayed(h);
      await waitFor('the job to sleep again', async () => (await delayedCount(h)) >= 1);
      t.equal((await attempts(h, id))[0]!.state, 'SCHEDULED');
      t.notOk(smtp.mails.some((m) => m.to === 'night@example.no'));
      h.clock.set('2026-01-15T08:00:30Z');
      await promoteDelayed(h);
      const rows = await settled(h, id);
      t.equal(rows[0]!.state, 'SENT');
      t.equal(rows[0]!.sent_at!.toISOString(), '2026-01-15T08:00:30.000Z');
      h.clock.set('2026-01-14T11:00:00Z');
    });

    await t.test('availableAt in the future: not before it', async (t) => {
      await insertPerson(h.db, { personId: ids[6]!, email: 'later@example.no', mobile: null }, now());
      const id = await insertMessage(h.db, { personId: ids[6]!, availableAt: new Date(now().getTime() + 2 * DAY), notifications: { email: {}, repeatAfterDays: [0] } }, now());
      await deliveryEvent(h, id, 'DELIVERED');
      await waitFor('scheduled', async () => (await attempts(h, id)).length === 1);
      t.equal((await attempts(h, id))[0]!.due_at.toISOString(), new Date(now().getTime() + 2 * DAY).toISOString());
    });

    await t.test('repetitions, and their cancellation once OPENED', async (t) => {
      await insertPerson(h.db, { personId: ids[7]!, email: 'rep@example.no', mobile: '+4790000777' }, now());
      const id = await insertMessage(h.db, { personId: ids[7]!, notifications: { email: {}, sms: {}, repeatAfterDays: [] } }, now());
      await deliveryEvent(h, id, 'DELIVERED');
      await settled(h, id, 2);
      const rows = await attempts(h, id);
      t.same(rows.map((r) => [r.channel, r.after_days, r.state]), [['email', 0, 'SENT'], ['email', 7, 'SCHEDULED'], ['sms', 0, 'SENT'], ['sms', 7, 'SCHEDULED']], 'default [0, 7]');
      t.equal(rows[1]!.due_at.getTime(), now().getTime() + 7 * DAY);
      await deliveryEvent(h, id, 'OPENED');
      await waitFor('cancellation', async () => (await attempts(h, id)).every((r) => r.state !== 'SCHEDULED'));
      t.same((await attempts(h, id)).map((r) => r.state), ['SENT', 'CANCELLED', 'SENT', 'CANCELLED']);
      h.clock.advance(7 * DAY);
      await promoteDelayed(h);
      // Control point, not a pause: every promoted job has run (and found its attempt cancelled).
      await waitFor('the promoted jobs to run', async () => {
        const open = await Promise.all([QUEUES.email, QUEUES.sms].map(async (q) => (await h.ctx.queues.queue(q).getWaitingCount()) + (await h.ctx.queues.queue(q).getActiveCount())));
        return open.every((n) => n === 0);
      });
      t.equal(smtp.mails.filter((m) => m.to === 'rep@example.no').length, 1, 'no repetition after OPENED');
      h.clock.set('2026-01-14T11:00:00Z');
    });

    await t.test('a repetition goes out when the letter stays unopened; a late OPENED is checked at send time', async (t) => {
      await insertPerson(h.db, { personId: ids[8]!, email: 'rep2@example.no', mobile: null }, now());
      const id = await insertMessage(h.db, { personId: ids[8]!, notifications: { email: {}, repeatAfterDays: [0, 3, 9] } }, now());
      await deliveryEvent(h, id, 'DELIVERED');
      await settled(h, id, 1);
      h.clock.advance(3 * DAY);
      await promoteDelayed(h);
      await settled(h, id, 2);
      t.equal(smtp.mails.filter((m) => m.to === 'rep2@example.no').length, 2);
      const evs = await events(h, id);
      t.equal(evs.filter((e) => e.type === 'NOTIFIED').length, 1, 'NOTIFIED only for the first alert');
      // OPENED reaches the evidence log, but its queue event is not handled yet: the send path still sees it.
      const { appendEvent } = await import('../../../shared/evidence/events.js');
      await appendEvent(h.db, h.ctx.hub, { messageId: id, type: 'OPENED', senderOrgnr: '974760673' });
      h.clock.advance(6 * DAY);
      await promoteDelayed(h);
      const rows = await settled(h, id);
      t.same(rows.map((r) => r.state), ['SENT', 'SENT', 'CANCELLED']);
      h.clock.set('2026-01-14T11:00:00Z');
    });
  });
}
