import { PassThrough } from 'node:stream';
import t from 'tap';
import { service } from '../../../services/ingestion/app.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { testService } from '../../helpers/service.js';
import { waitFor } from '../../helpers/wait.js';
import { letter, multipart, newKey, PDF, seedRegistry, SENDER } from './fixtures.js';

const OVERLOADED = 'https://postbud.dev/problems/ingestion/intake-overloaded';

t.test('load shedding: what the intake cannot take is refused at once with 503 + Retry-After, and nothing accepted is lost', async (t) => {
  const svc = await testService(t, service, { env: { INTAKE_QUEUE_MAX: '2', INTAKE_UPLOADS_MAX: '6', INTAKE_BATCH_WINDOW_MS: '0', INTAKE_IDLE_TIMEOUT_MS: '3000' } });
  const db = svc.deps.db.kysely;
  await seedRegistry(db);
  const token = await svc.token({ org: SENDER, scope: SCOPES.send });
  const intake = svc.app.intake!;
  const send = (ref: string, payload?: PassThrough) => {
    const body = multipart(letter({ senderReference: ref }), [{ name: 'vedtak.pdf', content: PDF() }]);
    if (payload) payload.write(body.payload.subarray(0, 200));
    return svc.app.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: { authorization: `Bearer ${token}`, 'content-type': body.contentType, 'idempotency-key': newKey() },
      payload: payload ?? body.payload,
    });
  };

  await t.test('more sealed letters than INTAKE_QUEUE_MAX waiting for their commit', async (t) => {
    const release = intake.commit.pause();
    const first = [send('q-1'), send('q-2')];
    await waitFor('two letters waiting for the commit', async () => intake.commit.queued === 2);
    const refused = await Promise.all([send('q-3'), send('q-4')]);
    t.same(refused.map((r) => r.statusCode), [503, 503], 'the ones beyond the bound are refused while the others wait');
    t.same(refused.map((r) => r.json().type), [OVERLOADED, OVERLOADED]);
    t.same(refused.map((r) => r.headers['retry-after']), ['1', '1']);
    release();
    const accepted = await Promise.all(first);
    t.same(accepted.map((r) => r.statusCode), [201, 201]);
    const written = await db.selectFrom('messages').select('sender_reference').where('sender_reference', 'like', 'q-%').orderBy('sender_reference').execute();
    t.same(written.map((w) => w.sender_reference), ['q-1', 'q-2'], 'every accepted letter is written, no refused one');
    const metrics = await svc.app.inject({ url: '/metrics' });
    t.match(metrics.body, /ingestion_intake_shed_total\{reason="queue",service="ingestion"\} 2/);
  });

  await t.test('more uploads at once than INTAKE_UPLOADS_MAX', async (t) => {
    const bodies = Array.from({ length: 6 }, () => new PassThrough());
    const stalled = bodies.map((b, i) => send(`u-${i}`, b));
    await waitFor('six uploads in flight', async () => intake.slots.inFlight === 6);
    const refused = await send('u-over');
    t.equal(refused.statusCode, 503);
    t.equal(refused.json().type, OVERLOADED);
    t.equal(refused.headers['retry-after'], '1');
    const timedOut = await Promise.all(stalled); // INTAKE_IDLE_TIMEOUT_MS ends them
    t.same(timedOut.map((r) => r.statusCode), timedOut.map(() => 408));
  });
});

t.test('an event loop too busy to answer in time makes the intake refuse letters (under-pressure), not health', async (t) => {
  const svc = await testService(t, service, { env: { INTAKE_MAX_EVENT_LOOP_DELAY_MS: '20' } });
  await seedRegistry(svc.deps.db.kysely);
  const token = await svc.token({ org: SENDER, scope: SCOPES.send });
  const body = multipart(letter(), [{ name: 'vedtak.pdf', content: PDF() }]);
  // Control point: block the loop until the plugin's sampler has seen the delay.
  const refused = await waitFor('a 503 under pressure', async () => {
    const until = Date.now() + 200;
    while (Date.now() < until) {
      /* busy: the event loop is blocked */
    }
    const res = await svc.app.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: { authorization: `Bearer ${token}`, 'content-type': body.contentType, 'idempotency-key': newKey() },
      payload: body.payload,
    });
    return res.statusCode === 503 ? res : undefined;
  });
  t.equal(refused.json().type, OVERLOADED);
  t.equal(refused.headers['retry-after'], '1');
  t.equal(refused.headers['content-type'], 'application/problem+json; charset=utf-8');
  const health = await svc.app.inject({ url: '/health/live' });
  t.equal(health.statusCode, 200, 'health is not shed');
});
