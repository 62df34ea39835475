/**
 * Requests without a valid token are refused before their body is read, in every service, and
 * schema errors are bounded in size (issue 16.7). Against listening servers with a keep-alive
 * client: the refusal comes while the client is still sending, and the next request is answered.
 */
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { service as notification } from '../../services/notification/app.js';
import { service as registry } from '../../services/registry/app.js';
import { SCOPES } from '../../shared/auth/scopes.js';
import { MAX_VALIDATION_ERRORS } from '../../shared/errors/error-handler.js';
import { keepAliveClient } from '../helpers/keep-alive.js';
import { testService } from '../helpers/service.js';

const MB = 1024 * 1024;

async function listening(t: Test, mod: typeof registry) {
  const svc = await testService(t, mod);
  await svc.app.listen({ port: 0, host: '127.0.0.1' });
  const client = keepAliveClient(`http://127.0.0.1:${(svc.app.server.address() as AddressInfo).port}`);
  t.teardown(() => client.close());
  return { svc, client };
}

t.test('registry: a 48 MB import without a token is refused before it is read; the connection goes on', async (t) => {
  const { client } = await listening(t, registry);
  const body = Buffer.alloc(48 * MB, '{"personId":"x"}\n');
  const res = await client.request('POST', '/v1/admin/persons/import', { 'content-type': 'application/x-ndjson' }, body);
  t.equal(res.status, 401);
  t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8');
  t.ok(res.sentWhenAnswered < body.length, `answered after ${(res.sentWhenAnswered / MB).toFixed(1)} of 48 MB`);
  t.equal(res.headers.connection, 'close', 'the rest is not read: the client is told to reconnect');
  t.equal((await client.request('GET', '/health/live')).status, 200, 'the next request is answered');
});

t.test('registry and notification check the token before the body', async (t) => {
  for (const [mod, url] of [[registry, '/v1/persons/lookup'], [notification, '/v1/invitations']] as const) {
    const { client } = await listening(t, mod);
    // 300 KB of a body that fails the schema in thousands of places.
    const body = Buffer.from(JSON.stringify({ personIds: Array.from({ length: 25_000 }, () => 'nope-nope') }));
    const res = await client.request('POST', url, { 'content-type': 'application/json' }, body);
    t.equal(res.status, 401, `${mod.name}: no token is a 401 whatever the body`);
    t.ok(res.body.length < 2000, `${mod.name}: a small answer (${res.body.length} bytes)`);
  }
});

t.test('schema errors are bounded in size', async (t) => {
  const { svc, client } = await listening(t, registry);
  const token = await svc.token({ org: '974760673', scope: SCOPES.lookup });
  // 1,000 ids (the most allowed), each 280 characters of not an id: a thousand failures.
  const body = Buffer.from(JSON.stringify({ personIds: Array.from({ length: 1000 }, (_, i) => `${i}`.padEnd(280, 'x')) }));
  const res = await client.request('POST', '/v1/persons/lookup', { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'x-purpose': 'test' }, body);
  t.equal(res.status, 400);
  const problem = JSON.parse(res.body) as { type: string; errors: unknown[]; moreErrors?: number };
  t.equal(problem.type, 'https://postbud.dev/problems/validation');
  t.equal(problem.errors.length, MAX_VALIDATION_ERRORS, `the first ${MAX_VALIDATION_ERRORS} errors listed`);
  t.ok((problem.moreErrors ?? 0) >= 980, `the others counted (${String(problem.moreErrors)})`);
  t.ok(res.body.length < 16 * 1024, `answer of ${res.body.length} bytes for a ${(body.length / 1024).toFixed(0)} KB request`);
});
