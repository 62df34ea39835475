import t, { type Test } from 'tap';
import { Type } from 'typebox';
import { createApp } from '../../shared/app/create-app.js';
import { connectDb } from '../../shared/db/connect.js';
import { Problem, commonProblems } from '../../shared/errors/problem.js';
import { testDeps } from '../helpers/service.js';

const PROBLEM_JSON = 'application/problem+json; charset=utf-8';

t.test('every error is problem+json with a stable type', async (t) => {
  const deps = await testDeps(t, { env: { RATE_LIMIT_PER_MINUTE: '1000' } });
  const app = await createApp({ name: 'ingestion', description: 'errors', bodyLimit: 1024 }, deps);
  app.post(
    '/things',
    { schema: { body: Type.Object({ name: Type.String({ minLength: 1 }), count: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }) } },
    async (req) => req.body,
  );
  app.get('/boom', async () => {
    throw new Error('database password is hunter2');
  });
  app.get('/gone', async () => {
    throw new Problem(commonProblems.CONFLICT, 'already there');
  });
  t.teardown(() => app.close());

  const expectProblem = (t: Test, res: { statusCode: number; headers: Record<string, unknown>; json(): Record<string, unknown> }, status: number, slug: string) => {
    t.equal(res.statusCode, status, `status ${status}`);
    t.equal(res.headers['content-type'], PROBLEM_JSON);
    const body = res.json();
    t.equal(body.type, `https://postbud.dev/problems/${slug}`);
    t.equal(body.status, status);
    t.type(body.title, 'string');
    t.type(body.code, 'string');
    return body;
  };

  await t.test('schema violations name each field', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/things', payload: { name: '', count: 0, extra: true } });
    const body = expectProblem(t, res, 400, 'validation');
    const errors = body.errors as { pointer: string; property?: string }[];
    t.ok(errors.some((e) => e.pointer === '/name'));
    t.ok(errors.some((e) => e.pointer === '/count'));
    t.ok(errors.some((e) => e.property === 'extra'), 'unknown fields are refused, not silently dropped');
  });
  await t.test('malformed JSON and an empty body', async (t) => {
    expectProblem(t, await app.inject({ method: 'POST', url: '/things', headers: { 'content-type': 'application/json' }, payload: '{"name":' }), 400, 'malformed-body');
    expectProblem(t, await app.inject({ method: 'POST', url: '/things', headers: { 'content-type': 'application/json' }, payload: '' }), 400, 'malformed-body');
  });
  await t.test('wrong content type is 415', async (t) => {
    expectProblem(t, await app.inject({ method: 'POST', url: '/things', headers: { 'content-type': 'text/csv' }, payload: 'a,b' }), 415, 'unsupported-media-type');
  });
  await t.test('a body over the limit is 413', async (t) => {
    expectProblem(t, await app.inject({ method: 'POST', url: '/things', payload: { name: 'x'.repeat(5000), count: 1 } }), 413, 'payload-too-large');
  });
  await t.test('unknown path is 404, known path with another method is 405 with Allow', async (t) => {
    expectProblem(t, await app.inject({ method: 'GET', url: '/nowhere' }), 404, 'not-found');
    const res = await app.inject({ method: 'DELETE', url: '/things' });
    const body = expectProblem(t, res, 405, 'method-not-allowed');
    t.equal(res.headers.allow, 'POST');
    t.same(body.allowed, ['POST']);
  });
  await t.test('domain problems keep their type and detail', async (t) => {
    const body = expectProblem(t, await app.inject({ method: 'GET', url: '/gone' }), 409, 'conflict');
    t.equal(body.detail, 'already there');
    t.equal(body.instance, '/gone');
  });
  await t.test('an unexpected error is a 500 that leaks nothing', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/boom' });
    expectProblem(t, res, 500, 'internal');
    t.notMatch(res.body, 'hunter2');
  });
  await t.test('a valid request passes', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/things', payload: { name: 'a', count: 2 } });
    t.equal(res.statusCode, 200);
    t.same(res.json(), { name: 'a', count: 2 });
  });
});

t.test('rate limiting answers 429 problem+json with Retry-After', async (t) => {
  const deps = await testDeps(t, { env: { RATE_LIMIT_PER_MINUTE: '3' } });
  const app = await createApp({ name: 'registry', description: 'limits' }, deps);
  app.get('/x', async () => ({ ok: true }));
  t.teardown(() => app.close());
  const codes: number[] = [];
  let last;
  for (let i = 0; i < 5; i++) {
    last = await app.inject({ method: 'GET', url: '/x' });
    codes.push(last.statusCode);
  }
  t.same(codes, [200, 200, 200, 429, 429]);
  t.equal(last!.headers['content-type'], PROBLEM_JSON);
  t.equal(last!.json().type, 'https://postbud.dev/problems/rate-limited');
  t.ok(Number(last!.headers['retry-after']) > 0);
  t.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200, 'health checks are never limited');
});

t.test('health, readiness and metrics', async (t) => {
  const deps = await testDeps(t);
  const app = await createApp({ name: 'storage', description: 'health' }, deps);
  app.get('/v1/things/:id', async () => ({ ok: true }));
  t.teardown(() => app.close());

  t.same((await app.inject({ method: 'GET', url: '/health/live' })).json(), { status: 'live' });
  const ready = await app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(ready.statusCode, 200);
  t.same(ready.json().checks, { database: { ok: true, required: true }, queue: { ok: true, required: false }, migrations: { ok: true, required: true } });
  t.equal(ready.json().status, 'ready');

  await app.inject({ method: 'GET', url: '/v1/things/01017012345' });
  const metrics = await app.inject({ method: 'GET', url: '/metrics' });
  t.equal(metrics.statusCode, 200);
  t.match(metrics.headers['content-type'], /text\/plain/);
  t.match(metrics.body, /http_requests_total\{method="GET",route="\/v1\/things\/:id",status="200",service="storage"\} 1/);
  t.match(metrics.body, /http_request_duration_seconds_bucket/);
  t.notMatch(metrics.body, '01017012345', 'metrics label routes by pattern, not by URL');
  t.match(metrics.body, /process_resident_memory_bytes/);

  const docs = await app.inject({ method: 'GET', url: '/docs/' });
  t.equal(docs.statusCode, 200, 'the OpenAPI UI is served at /docs');
  t.match(docs.headers['content-type'], /text\/html/);
  const spec = await app.inject({ method: 'GET', url: '/docs/json' });
  t.equal(spec.json().openapi, '3.1.0');
});

t.test('readiness is 503 when the database is unreachable or migrations are pending', async (t) => {
  const deps = await testDeps(t);
  const down = connectDb('postgres://nobody@127.0.0.1:1/none', { poolSize: 1 });
  t.teardown(() => down.close());
  const app = await createApp({ name: 'storage', description: 'down' }, { ...deps, db: down });
  t.teardown(() => app.close());
  const res = await app.inject({ method: 'GET', url: '/health/ready' });
  t.equal(res.statusCode, 503);
  t.equal(res.json().status, 'not-ready');
  t.equal(res.json().checks.database.ok, false);
  t.equal(res.json().checks.queue.ok, true, 'each dependency is reported on its own');

  await deps.db.kysely.deleteFrom('kysely_migration' as never).execute();
  const app2 = await createApp({ name: 'storage', description: 'behind' }, deps);
  t.teardown(() => app2.close());
  const behind = await app2.inject({ method: 'GET', url: '/health/ready' });
  t.equal(behind.statusCode, 503);
  t.match(behind.json().checks.migrations.detail, /pending: 0001_foundation/);
});
