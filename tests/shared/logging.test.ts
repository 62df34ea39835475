import t, { type Test } from 'tap';
import { createLogger } from '../../shared/logging/logger.js';
import { createApp } from '../../shared/app/create-app.js';
import { testDeps } from '../helpers/service.js';
import { captureLog } from '../helpers/log-capture.js';

const PERSON_ID = '01017012345';
const EMAIL = 'kari.nordmann@example.no';
const PHONE = '+4799887766';
const TITLE = 'Vedtak om barnebidrag';
const DOC = 'JVBERi0xLjcKc2VjcmV0IGNvbnRlbnQ=';

const capture = captureLog;

const assertClean = (t: Test, text: string) => {
  for (const secret of [PERSON_ID, EMAIL, PHONE, TITLE, DOC]) t.notMatch(text, secret, `no ${secret.slice(0, 6)}… in logs`);
};

t.test('personal data and documents are redacted from structured fields', async (t) => {
  const { lines, stream } = capture();
  const log = createLogger('test', 'info', stream);
  log.info({ personId: PERSON_ID, email: EMAIL, mobile: PHONE, title: TITLE, documents: [{ content: DOC }] }, 'flat');
  log.info({ message: { recipient: { personId: PERSON_ID, email: EMAIL }, title: TITLE, phone: PHONE } }, 'nested');
  log.info({ personIds: [PERSON_ID, PERSON_ID] }, 'list');
  const out = lines.join('');
  assertClean(t, out);
  t.match(out, /\[redacted\]/, 'fields are kept but censored, so the log still shows they were there');
  t.equal(lines.length, 3);
});

t.test('identifiers in free text are scrubbed', async (t) => {
  const { lines, stream } = capture();
  const log = createLogger('test', 'info', stream);
  log.info(`lookup of ${PERSON_ID} for ${EMAIL} failed`);
  log.warn('order number 123456789012 is not a personId');
  const out = lines.join('');
  assertClean(t, out);
  t.match(out, /\[personId\]/);
  t.match(out, /123456789012/, 'longer digit runs are not mistaken for a personId');
});

t.test('request logs carry a request id but no personId from the URL or headers', async (t) => {
  const { lines, stream } = capture();
  const deps = await testDeps(t);
  const app = await createApp({ name: 'registry', description: 'test' }, { ...deps, logger: createLogger('registry', 'info', stream) });
  app.get('/v1/capabilities/:personId', async () => ({ ok: true }));
  t.teardown(() => app.close());
  const res = await app.inject({
    method: 'GET',
    url: `/v1/capabilities/${PERSON_ID}?email=${EMAIL}`,
    headers: { 'x-request-id': 'trace-abc-123', authorization: 'Bearer secret.token.value' },
  });
  t.equal(res.statusCode, 200);
  t.equal(res.headers['x-request-id'], 'trace-abc-123', 'a caller-supplied request id is echoed');
  const out = lines.join('');
  assertClean(t, out);
  t.notMatch(out, 'secret.token.value');
  const entries = lines.map((l) => JSON.parse(l) as { reqId?: string });
  t.ok(entries.some((e) => e.reqId === 'trace-abc-123'), 'log lines carry the request id');

  const generated = await app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': 'bad id with spaces' } });
  t.match(generated.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'an unusable request id is replaced with a fresh one');
});

t.test("a route's own log lines carry its request id and are redacted; lines below the level are not written", async (t) => {
  for (const level of ['info', 'warn'] as const) {
    const { lines, stream } = capture();
    const deps = await testDeps(t);
    const app = await createApp({ name: 'registry', description: 'test' }, { ...deps, logger: createLogger('registry', level, stream) });
    app.get('/v1/things', async (request) => {
      request.log.debug({ personId: PERSON_ID }, 'debug line');
      request.log.info({ personId: PERSON_ID, title: TITLE }, 'info line');
      request.log.warn({ email: EMAIL }, 'warn line');
      return { ok: true };
    });
    const res = await app.inject({ method: 'GET', url: '/v1/things', headers: { 'x-request-id': `req-${level}` } });
    await app.close();
    t.equal(res.statusCode, 200);
    const entries = lines.map((l) => JSON.parse(l) as { reqId?: string; msg?: string; personId?: string });
    const own = entries.filter((e) => /line$/.test(e.msg ?? ''));
    t.same(own.map((e) => e.msg), level === 'info' ? ['info line', 'warn line'] : ['warn line'], `level ${level}: only lines at or above it`);
    t.ok(own.every((e) => e.reqId === `req-${level}`), 'each carries the request id');
    if (level === 'info') t.equal(own[0]!.personId, '[redacted]');
    assertClean(t, lines.join(''));
  }
});
