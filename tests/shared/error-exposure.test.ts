import { randomBytes } from 'node:crypto';
import t from 'tap';
import { SERVICES } from '../../scripts/services.js';
import { ensureDevIssuer, issueDevToken } from '../../shared/auth/dev-issuer.js';
import { SCOPES } from '../../shared/auth/scopes.js';
import { testDataDir, testDeps } from '../helpers/service.js';

/** What must never reach a caller: a stack, a file path of ours or of a dependency. */
const LEAKS = /\bat [\w.<>]+ \(|node_modules|\/work\/|\.ts:\d+|\.js:\d+|"stack"/;

for (const NODE_ENV of ['development', 'test', 'production'] as const) {
  for (const mod of SERVICES) {
    t.test(`${mod.name} with NODE_ENV=${NODE_ENV}: every error is problem+json without a stack`, async (t) => {
      const dataDir = testDataDir(t);
      const issuer = await ensureDevIssuer(dataDir);
      const env = { NODE_ENV, DATA_DIR: dataDir, ...(NODE_ENV === 'production' ? { AUTH_ISSUERS: `${issuer.issuer}=${issuer.jwks}`, KEKS: `k1:${randomBytes(32).toString('base64')}` } : {}) };
      const deps = await testDeps(t, { env });
      const app = await mod.buildApp(deps);
      // A route that fails the way an unforeseen bug does, with a path in its message.
      app.get('/test/boom', async () => {
        throw new Error(`cannot read /work/secret/${mod.name}.ts:12`);
      });
      t.teardown(() => app.close());
      await app.ready();
      const token = (scope: string) => issueDevToken(dataDir, { org: '974760673', scope, audience: deps.config.AUTH_AUDIENCE });
      const cases: { method: 'GET' | 'POST' | 'PUT'; url: string; auth?: string; body?: string; status: number; type?: string }[] = [
        { method: 'GET', url: '/test/boom', status: 500, type: 'internal' },
        { method: 'GET', url: '/no/such/route', status: 404, type: 'not-found' },
      ];
      if (mod.name === 'ingestion') cases.push({ method: 'POST', url: '/v1/messages', body: '{not json', status: 401, type: 'unauthenticated' });
      if (mod.name === 'notification') {
        const admin = `Bearer ${await token(SCOPES.admin)}`;
        const notAdmin = `Bearer ${await token(SCOPES.send)}`;
        cases.push(
          { method: 'GET', url: '/admin/queues', status: 401, type: 'unauthenticated' },
          { method: 'GET', url: '/admin/queues/api/queues', status: 401, type: 'unauthenticated' },
          { method: 'GET', url: '/admin/queues/static/nope.js', status: 401, type: 'unauthenticated' },
          { method: 'GET', url: '/admin/queues/api/queues', auth: 'Bearer not.a.token', status: 401, type: 'unauthenticated' },
          { method: 'GET', url: '/admin/queues/api/queues', auth: notAdmin, status: 403, type: 'insufficient-scope' },
          { method: 'PUT', url: '/admin/queues/api/queues/no-such-queue/retry/failed', auth: admin, status: 404, type: 'not-found' },
          { method: 'GET', url: '/admin/queues/api/queues/no-such-queue/no-such-job', auth: admin, status: 404, type: 'not-found' },
        );
      }
      for (const c of cases) {
        const res = await app.inject({
          method: c.method,
          url: c.url,
          headers: { ...(c.auth ? { authorization: c.auth } : {}), ...(c.body ? { 'content-type': 'application/json' } : {}) },
          ...(c.body ? { payload: c.body } : {}),
        });
        const what = `${c.method} ${c.url}${c.auth ? ' (with a token)' : ''}`;
        t.equal(res.statusCode, c.status, `${what}: ${c.status}`);
        t.match(res.headers['content-type'], /^application\/problem\+json/, `${what}: problem+json`);
        t.notMatch(res.body, LEAKS, `${what}: no stack trace or file path`);
        if (c.type) t.equal(res.json().type, `https://postbud.dev/problems/${c.type}`, `${what}: type ${c.type}`);
        if (c.status === 401) t.match(res.headers['www-authenticate'], /^Bearer/, `${what}: WWW-Authenticate`);
      }
    });
  }
}
