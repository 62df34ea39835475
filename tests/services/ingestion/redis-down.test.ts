/**
 * Redis stopped under ingestion (issue 16.4): the intake never needs the queue (a letter's
 * expiry is its delivery's expires_at, read by the ingestion service's sweep), so it stays ready
 * (degraded: in the body and in /metrics) and keeps accepting letters; the notification service,
 * whose work is the queue, reports not-ready. Readiness answers at once either way.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import t from 'tap';
import { service as ingestion } from '../../../services/ingestion/app.js';
import { service as notification } from '../../../services/notification/app.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { issueDevToken } from '../../../shared/auth/dev-issuer.js';
import { createQueueFactory } from '../../../shared/queue/queues.js';
import { hasRedisServer, startRedisServer } from '../../harness/redis-server.js';
import { testDeps } from '../../helpers/service.js';
import { waitFor } from '../../helpers/wait.js';
import { letter, multipart, newKey, PDF, seedRegistry, SENDER } from './fixtures.js';

t.test('Redis stopped: ingestion stays ready (degraded) and accepts letters', { skip: hasRedisServer() ? false : 'no redis-server' }, async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const deps = await testDeps(t, { env: { HEALTH_PROBE_MS: '200' } });
  const queues = createQueueFactory({ redisUrl: redis.url, databaseUrl: deps.databaseUrl, prefix: `q_${randomBytes(5).toString('hex')}` });
  t.teardown(() => queues.close());
  const app = await ingestion.buildApp({ ...deps, queues });
  t.teardown(() => app.close());
  const alerts = await notification.buildApp({ ...deps, queues });
  t.teardown(() => alerts.close());
  await seedRegistry(deps.db.kysely);
  const token = await issueDevToken(deps.dataDir, { org: SENDER, scope: SCOPES.send, audience: deps.config.AUTH_AUDIENCE });
  const ready = (a = app) => a.inject({ method: 'GET', url: '/health/ready' });
  await waitFor('ingestion ready', async () => (await ready()).json().status === 'ready');
  await waitFor('notification ready', async () => (await ready(alerts)).json().status === 'ready');

  await redis.stop();
  await waitFor('the probe to see Redis gone', async () => (await ready()).json().checks.queue.ok === false);
  const started = performance.now();
  const res = await ready();
  const ms = performance.now() - started;
  t.equal(res.statusCode, 200, 'still ready');
  t.match(res.json(), { status: 'degraded', checks: { database: { ok: true }, queue: { ok: false, required: false } } });
  t.ok(ms < 200, `readiness answered in ${ms.toFixed(1)} ms`);
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  t.match(metrics, /health_dependency_up\{dependency="queue",required="false"[^}]*\} 0/);
  t.match(metrics, /health_status\{status="degraded"[^}]*\} 1/);

  const body = multipart(letter(), [{ name: 'vedtak.pdf', content: PDF() }]);
  const sent = await app.inject({
    method: 'POST',
    url: '/v1/messages',
    headers: { authorization: `Bearer ${token}`, 'content-type': body.contentType, 'idempotency-key': newKey() },
    payload: body.payload,
  });
  t.equal(sent.statusCode, 201, 'a letter is accepted while Redis is down');
  const delivery = await deps.db.kysely.selectFrom('deliveries').select('expires_at').where('message_id', '=', sent.json().id).executeTakeFirstOrThrow();
  t.ok(delivery.expires_at, 'its expiry is set on the delivery');
  const waiting = await deps.db.kysely.selectFrom('outbox').select('id').where('relayed_at', 'is', null).execute();
  t.same(waiting, [], 'nothing of it waits for the queue');

  const unready = await waitFor('notification to see Redis gone', async () => {
    const r = await ready(alerts);
    return r.statusCode === 503 ? r : undefined;
  });
  t.match(unready.json(), { status: 'not-ready', checks: { queue: { ok: false, required: true } } }, 'the notification service needs its queue');
});
