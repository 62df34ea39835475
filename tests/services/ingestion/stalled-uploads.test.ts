import { PassThrough } from 'node:stream';
import { sql } from 'kysely';
import t from 'tap';
import { service } from '../../../services/ingestion/app.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { testService, type TestService } from '../../helpers/service.js';
import { waitFor } from '../../helpers/wait.js';
import { letter, multipart, newKey, OTHER_SENDER, PDF, seedRegistry, SENDER } from './fixtures.js';

/**
 * An upload that sends its message part and the first bytes of its document, then nothing until
 * `finish()`. With `length` it declares its Content-Length (small: the letter is read in
 * memory), without it the body is streamed; either way no connection may wait on its bytes.
 */
function stalledUpload(svc: TestService, token: string, senderReference: string, length: boolean) {
  const { payload, contentType } = multipart(letter({ senderReference }), [{ name: 'vedtak.pdf', content: PDF(64 * 1024) }]);
  const body = new PassThrough();
  const cut = payload.indexOf('%PDF-') + 1024;
  body.write(payload.subarray(0, cut));
  const answer = svc.app.inject({
    method: 'POST',
    url: '/v1/messages',
    headers: { authorization: `Bearer ${token}`, 'content-type': contentType, 'idempotency-key': newKey(), ...(length ? { 'content-length': String(payload.length) } : {}) },
    payload: body,
  });
  return { answer, finish: () => body.end(payload.subarray(cut)) };
}

const POOL = 4;
const STALLED = 10;
const WAYS = [
  ['streamed', false],
  ['read in memory', true],
] as const;

for (const [way, length] of WAYS) {

  t.test(`more stalled uploads than pool connections leave other requests and readiness unaffected (${way})`, async (t) => {
    const svc = await testService(t, service, { env: { DATABASE_POOL_SIZE: String(POOL), INTAKE_UPLOADS_PER_CLIENT: String(STALLED) } });
    const db = svc.deps.db.kysely;
    await seedRegistry(db);
    const token = await svc.token({ org: SENDER, scope: SCOPES.send });
    const otherToken = await svc.token({ org: OTHER_SENDER, scope: SCOPES.send });
    const intake = svc.app.intake!;

    const stalled = Array.from({ length: STALLED }, (_, i) => stalledUpload(svc, token, `stalled-${i}`, length));
    await waitFor(`${STALLED} uploads in flight`, async () => intake.slots.inFlight === STALLED);
    // Each has passed its lookup and waits for document bytes: none holds a connection.
    await waitFor('the lookups done', async () => intake.lookup.queued === 0 && svc.deps.db.pool.idleCount === svc.deps.db.pool.totalCount);
    // The intake's own sessions: test files beside it use other databases on the same server, and the
    // Postgres queue backend in this database has short transactions of its own (its own pool, no
    // application_name), which a loaded machine can catch between two statements.
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
      where datname = current_database() and application_name = current_setting('application_name')
        and state like 'idle in transaction%' and pid <> pg_backend_pid()`.execute(db);
    t.equal(rows[0]!.n, 0, 'no transaction is open while the uploads stall');

    const ready = await svc.app.inject({ url: '/health/ready' });
    t.equal(ready.statusCode, 200, 'readiness is unaffected');
    const list = await svc.app.inject({ url: '/v1/messages', headers: { authorization: `Bearer ${token}` } });
    t.equal(list.statusCode, 200, 'the stalled sender can still list its letters');
    const more = await Promise.all(
      Array.from({ length: POOL * 2 }, (_, i) => {
        const { payload, contentType } = multipart(letter({ senderReference: `beside-${i}` }), [{ name: 'vedtak.pdf', content: PDF() }]);
        return svc.app.inject({
          method: 'POST',
          url: '/v1/messages',
          headers: { authorization: `Bearer ${otherToken}`, 'content-type': contentType, 'idempotency-key': newKey() },
          payload,
        });
      }),
    );
    t.same(more.map((r) => r.statusCode), more.map(() => 201), 'letters of another sender go through beside them');

    const over = stalledUpload(svc, token, 'one-too-many', length);
    const refused = await over.answer;
    t.equal(refused.statusCode, 429, 'one upload more than INTAKE_UPLOADS_PER_CLIENT is refused at once');
    t.equal(refused.json().type, 'https://postbud.dev/problems/ingestion/too-many-uploads');
    t.equal(refused.headers['retry-after'], '1');

    for (const s of stalled) s.finish();
    const finished = await Promise.all(stalled.map((s) => s.answer));
    t.same(finished.map((r) => r.statusCode), finished.map(() => 201), 'the stalled uploads complete once their bytes arrive');
  });

  t.test(`an upload that stops sending is answered 408 after INTAKE_IDLE_TIMEOUT_MS, and the connection is closed (${way})`, async (t) => {
    const svc = await testService(t, service, { env: { INTAKE_IDLE_TIMEOUT_MS: '200' } });
    const db = svc.deps.db.kysely;
    await seedRegistry(db);
    const token = await svc.token({ org: SENDER, scope: SCOPES.send });
    const upload = stalledUpload(svc, token, 'idle', length);
    const res = await upload.answer;
    t.equal(res.statusCode, 408);
    t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8');
    t.equal(res.json().type, 'https://postbud.dev/problems/ingestion/upload-timeout');
    t.equal(res.headers.connection, 'close');
    t.equal(svc.app.intake!.slots.inFlight, 0, 'its upload slot is free again');
    const written = await db.selectFrom('messages').select('id').where('sender_reference', '=', 'idle').execute();
    t.same(written, [], 'nothing is written');
  });

  t.test(`an upload that takes longer than INTAKE_BODY_TIMEOUT_MS in all is answered 408 (${way})`, async (t) => {
    const svc = await testService(t, service, { env: { INTAKE_BODY_TIMEOUT_MS: '200' } });
    await seedRegistry(svc.deps.db.kysely);
    const token = await svc.token({ org: SENDER, scope: SCOPES.send });
    const upload = stalledUpload(svc, token, 'slow', length);
    const res = await upload.answer;
    t.equal(res.statusCode, 408);
    t.match(res.json().detail, /longer than 200 ms/);
  });
}
