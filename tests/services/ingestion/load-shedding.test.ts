import { PassThrough } from 'node:stream';
import t from 'tap';
import { service } from '../../../services/ingestion/app.js';
import { Admission } from '../../../services/ingestion/intake/admission.js';
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

t.test('latency-aware shedding: letters in flight are bounded, the bound follows the fastest answer of each interval', async (t) => {
  // Control point: the admission's clock is the test's, so "a letter took 300 ms" needs no sleep.
  let now = 0;
  const clock = () => now;

  t.test('the rule alone', async (t) => {
    now = 0;
    const a = new Admission({ targetMs: 50, intervalMs: 100, initialLimit: 8, minLimit: 2, maxLimit: 20, now: clock });
    const first = Array.from({ length: 8 }, () => a.enter());
    t.ok(first.every((x) => x !== undefined), 'a burst up to the bound is admitted whole');
    t.equal(a.enter(), undefined, 'the next one is refused while 8 are in flight');
    t.equal(a.refusesNow(), true);
    now = 30;
    for (const ticket of first) a.leave(ticket!); // fast: 30 ms
    now = 100;
    t.equal(a.currentLimit(), 9, 'fast answers while the bound was reached: it grows by a tenth (at least one)');
    const slow = Array.from({ length: 9 }, () => a.enter()!);
    now = 400;
    for (const ticket of slow.slice(0, 8)) a.leave(ticket); // took 400 ms: a standing queue
    now = 500;
    t.equal(a.currentLimit(), 6, 'even the fastest answer of the interval was over the target: it shrinks by a quarter');
    t.equal(a.inFlight, 1);
    a.leave(slow[8]!);
    now = 600;
    t.equal(a.currentLimit(), 4, 'and again while answers stay slow');
    now = 700;
    t.equal(a.currentLimit(), 4, 'an interval without answers changes nothing');
    for (let i = 0; i < 5; i++) {
      const tickets = Array.from({ length: a.currentLimit() }, () => a.enter()!);
      now += 100;
      for (const ticket of tickets) a.leave(ticket); // took 100 ms: still over the target
    }
    now += 100;
    t.equal(a.currentLimit(), 2, 'never under the minimum');
    const off = new Admission({ targetMs: 0, intervalMs: 100, initialLimit: 1, now: clock });
    t.ok([off.enter(), off.enter(), off.enter()].every((x) => x !== undefined), 'INTAKE_TARGET_LATENCY_MS=0: no bound');
  });

  t.test('a saturated event loop shrinks the bound while letters are refused, even when admitted letters are fast', async (t) => {
    // Control point: the loop's busy share per interval is the test's.
    now = 0;
    let busy = 0.99;
    const a = new Admission({ targetMs: 50, intervalMs: 100, initialLimit: 8, minLimit: 2, maxLimit: 20, maxBusy: 0.9, busy: () => busy, now: clock });
    const closedLoop = Array.from({ length: 8 }, () => a.enter()!);
    now = 10;
    for (const ticket of closedLoop) a.leave(ticket); // fast, and none refused
    now = 100;
    t.equal(a.currentLimit(), 9, 'a busy loop whose letters all fit under the bound is doing its work: the bound grows as usual');
    const tickets = Array.from({ length: 9 }, () => a.enter()!);
    t.equal(a.enter(), undefined, 'one refused');
    now = 110;
    for (const ticket of tickets) a.leave(ticket); // 10 ms: fast once admitted
    now = 200;
    t.equal(a.currentLimit(), 6, 'refusing while the loop was busy 99 % of the interval: it shrinks by a quarter although answers were fast');
    busy = 0.5;
    const again = Array.from({ length: 6 }, () => a.enter()!);
    t.equal(a.enter(), undefined);
    now = 210;
    for (const ticket of again) a.leave(ticket);
    now = 300;
    t.equal(a.currentLimit(), 7, 'with slack in the loop and fast answers it grows again');
  });

  t.test('through POST /v1/messages: 503 + Retry-After beyond the bound, every accepted letter written', async (t) => {
    const svc = await testService(t, service, { env: { INTAKE_BATCH_WINDOW_MS: '0' } });
    const db = svc.deps.db.kysely;
    await seedRegistry(db);
    const token = await svc.token({ org: SENDER, scope: SCOPES.send });
    const intake = svc.app.intake!;
    now = 0;
    intake.admission = new Admission({ targetMs: 50, intervalMs: 100, initialLimit: 2, minLimit: 1, now: clock });
    const send = (ref: string) => {
      const body = multipart(letter({ senderReference: ref }), [{ name: 'vedtak.pdf', content: PDF() }]);
      return svc.app.inject({
        method: 'POST',
        url: '/v1/messages',
        headers: { authorization: `Bearer ${token}`, 'content-type': body.contentType, 'idempotency-key': newKey() },
        payload: body.payload,
      });
    };
    const release = intake.commit.pause();
    const queued = [send('l-1'), send('l-2')];
    await waitFor('two letters at the commit', async () => intake.commit.queued === 2);
    const refused = await send('l-3');
    t.equal(refused.statusCode, 503, 'a third letter beyond the bound of two is refused at once');
    t.equal(refused.json().type, OVERLOADED);
    t.equal(refused.headers['retry-after'], '1');
    t.match(refused.headers['content-type'], /^application\/problem\+json/);
    t.match(refused.json(), { status: 503, title: String, detail: /latency target; retry shortly$/, instance: '/v1/messages', code: 'POSTBUD_INGESTION_INTAKE_OVERLOADED' }, 'a whole problem, as the error handler gives it');
    t.ok(refused.headers['x-request-id'], 'with its request id');
    t.not(refused.headers.connection, 'close', 'its unread body is discarded and the connection kept');
    const second = await send('l-3b');
    t.same(second.json(), refused.json(), 'every refusal answers the same problem');
    const forged = await svc.app.inject({ method: 'POST', url: '/v1/messages', headers: { authorization: 'Bearer not-a-token', 'content-type': 'multipart/form-data; boundary=x' }, payload: 'x' });
    t.equal(forged.statusCode, 503, 'the refusal comes before the token is checked (it costs no verification)');
    now = 300;
    release();
    t.same((await Promise.all(queued)).map((r) => r.statusCode), [201, 201], 'slow (300 ms on the clock), but accepted');
    now = 400;
    t.equal(intake.admission.currentLimit(), 1, 'the slow interval shrank the bound');
    const held = intake.commit.pause();
    const one = send('l-4');
    await waitFor('one letter at the commit', async () => intake.commit.queued === 1);
    t.equal((await send('l-5')).statusCode, 503, 'with the smaller bound the second one in flight is refused');
    held();
    t.equal((await one).statusCode, 201);
    t.equal((await send('l-6')).statusCode, 201, 'with nothing in flight a letter is taken again');
    // Requests refused after admission (no token, a forged one, not multipart, no key) give their place back.
    const refusedLater = [
      { payload: 'x' },
      { headers: { authorization: 'Bearer forged' }, payload: 'x' },
      { headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'idempotency-key': newKey() }, payload: '{}' },
      { headers: { authorization: `Bearer ${token}`, 'content-type': 'multipart/form-data; boundary=x' }, payload: 'x' },
    ];
    const statuses: number[] = [];
    for (const request of refusedLater) {
      statuses.push((await svc.app.inject({ method: 'POST', url: '/v1/messages', ...request })).statusCode);
      await waitFor('the refused request has left the bound', async () => intake.admission.inFlight === 0);
    }
    t.same(statuses, [401, 401, 415, 400], 'each one admitted (the bound of one was free) and refused on its own merits');
    t.equal((await send('l-7')).statusCode, 201, 'the bound of one is free again for a letter');
    const written = await db.selectFrom('messages').select('sender_reference').where('sender_reference', 'like', 'l-%').orderBy('sender_reference').execute();
    t.same(written.map((w) => w.sender_reference), ['l-1', 'l-2', 'l-4', 'l-6', 'l-7'], 'every accepted letter is written, no refused one');
    const metrics = await svc.app.inject({ url: '/metrics' });
    t.match(metrics.body, /ingestion_intake_shed_total\{reason="latency",service="ingestion"\} 4/); // l-3, l-3b, the forged token, l-5
  });
});
