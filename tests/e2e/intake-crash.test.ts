import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import t from 'tap';
import { issueDevToken } from '../../shared/auth/dev-issuer.js';
import { SCOPES } from '../../shared/auth/scopes.js';
import { freePort } from '../harness/free-port.js';
import { testDatabase } from '../helpers/database.js';
import { runTs, waitForHttp, type Proc } from '../helpers/processes.js';
import { testDataDir } from '../helpers/service.js';
import { waitFor } from '../helpers/wait.js';
import { letter, multipart, PDF, seedRegistry, SENDER } from '../services/ingestion/fixtures.js';

const LETTERS = 2000;
const CONCURRENCY = 24;
const KILLS = 4;
// 2,000 letters through four crashes take ~50 s on an idle 2-core machine and several times that
// with both cores saturated (CI_LOAD=1); a pass never waits for this limit.
t.setTimeout(10 * 60_000);

t.test('SIGKILL during 2,000 submissions in group commits with retries: every letter exactly once, with exactly one delivery', async (t) => {
  const { url, db } = await testDatabase(t);
  await seedRegistry(db.kysely);
  const dataDir = testDataDir(t);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = { DATABASE_URL: url, INGESTION_PORT: String(port), DATA_DIR: dataDir, QUEUE_PREFIX: 'e2e_crash', LOG_LEVEL: 'warn', DATABASE_POOL_SIZE: '12' };
  // Tokens live at most AUTH_MAX_TOKEN_LIFETIME_S (5 min); on a loaded machine the run outlasts
  // one, and the client does what a real one does: fetch a new token on token-expired.
  const newToken = () => issueDevToken(dataDir, { org: SENDER, scope: SCOPES.send, audience: 'postbud' });
  let token = await newToken();

  let proc: Proc = runTs(t, 'services/ingestion/main.ts', [], env);
  await waitForHttp(`${base}/health/ready`, 60_000);

  const keys = Array.from({ length: LETTERS }, () => randomUUID());
  const answers = new Map<string, string>();
  let attempts = 0;
  let retried = 0;
  let next = 0;
  let done = 0;
  let kills = 0;
  let restarting: Promise<void> | undefined;

  let sharedBatches = 0;
  let killedMidCommit = 0;
  /** Batches of more than one letter the running process committed (from its /metrics histogram). */
  const multiLetterBatches = async () => {
    const text = await fetch(`${base}/metrics`).then((r) => r.text());
    const count = Number(/ingestion_intake_batch_letters_count\{[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
    const single = Number(/ingestion_intake_batch_letters_bucket\{le="1"[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
    return count - single;
  };
  /** True while a batch of this process is between its first statement and its commit. */
  const batchInFlight = async () => {
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
      where application_name = 'postbud-ingestion' and state in ('active', 'idle in transaction') and backend_xid is not null
        and pid <> pg_backend_pid() and query like '%insert into idempotency_keys%'`.execute(db.kysely);
    return rows[0]!.n > 0;
  };

  const restart = async () => {
    sharedBatches += await multiLetterBatches().catch(() => 0);
    // The kill lands while a batch holds an open transaction that has written (a transaction id).
    await waitFor('a batch in flight', batchInFlight, 30_000, 1);
    killedMidCommit++;
    proc.child.kill('SIGKILL');
    await proc.exited;
    kills++;
    proc = runTs(t, 'services/ingestion/main.ts', [], env);
    await waitForHttp(`${base}/health/ready`, 60_000);
  };

  const submit = async (key: string, i: number) => {
    // Same request on every retry: same bytes, same key (a new multipart boundary each time).
    const doc = PDF(1024);
    const message = letter({ senderReference: `crash-${i}` });
    for (;;) {
      attempts++;
      const body = multipart(message, [{ name: 'vedtak.pdf', content: doc }]);
      try {
        const res = await fetch(`${base}/v1/messages`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': body.contentType, 'idempotency-key': key },
          body: body.payload,
          signal: AbortSignal.timeout(15_000),
        });
        const json = (await res.json()) as { id?: string };
        if (res.status === 201) return json.id!;
        if (res.status === 401 && (json as { type?: string }).type === 'https://postbud.dev/problems/token-expired') token = await newToken();
        else if (res.status !== 409 && res.status < 500) throw new Error(`unexpected ${res.status}: ${JSON.stringify(json)}`);
      } catch (err) {
        if (String(err).includes('unexpected')) throw err;
      }
      retried++;
      await (restarting ?? new Promise((r) => setTimeout(r, 50)));
    }
  };

  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < LETTERS) {
        const i = next++;
        answers.set(keys[i]!, await submit(keys[i]!, i));
        done++;
        if (kills < KILLS && done >= ((kills + 1) * LETTERS) / (KILLS + 1) && !restarting) {
          restarting = restart().finally(() => (restarting = undefined));
        }
      }
    }),
  );
  await restarting;
  sharedBatches += await multiLetterBatches();
  t.equal(kills, KILLS, `killed with SIGKILL ${KILLS} times`);
  t.equal(killedMidCommit, KILLS, 'each kill landed while a batch was between its first write and its commit');
  t.ok(sharedBatches > 0, `concurrent letters shared batches (${sharedBatches} batches of more than one letter)`);
  t.comment(`${attempts} requests for ${LETTERS} letters (${retried} retries)`);

  const q = db.kysely;
  const messages = await q.selectFrom('messages').select(['id', 'sender_reference']).execute();
  t.equal(messages.length, LETTERS, 'every letter exists exactly once');
  t.equal(new Set(messages.map((m) => m.sender_reference)).size, LETTERS);
  const perMessage = await q
    .selectFrom('deliveries')
    .select(['message_id', (eb) => eb.fn.countAll<string>().as('n')])
    .groupBy('message_id')
    .execute();
  t.equal(perMessage.length, LETTERS, 'every letter has a delivery');
  t.ok(perMessage.every((r) => Number(r.n) === 1), 'exactly one delivery each');
  const stored = await q.selectFrom('idempotency_keys').select(['key', 'message_id']).execute();
  t.equal(stored.length, LETTERS);
  t.ok(stored.every((s) => answers.get(s.key) === s.message_id), 'every client got the id of the one letter its key made');
  const events = await q.selectFrom('message_events').select((eb) => eb.fn.countAll<string>().as('n')).where('type', '=', 'SEALED').executeTakeFirstOrThrow();
  t.equal(Number(events.n), LETTERS, 'one SEALED event each');
  const outbox = await q.selectFrom('outbox').select((eb) => eb.fn.countAll<string>().as('n')).where('queue', '=', 'ingestion').executeTakeFirstOrThrow();
  t.equal(Number(outbox.n), 0, 'no expiry jobs: the sweep reads expires_at');
  const expiring = await q.selectFrom('deliveries').select((eb) => eb.fn.countAll<string>().as('n')).where('expires_at', 'is not', null).executeTakeFirstOrThrow();
  t.equal(Number(expiring.n), LETTERS, 'every delivery has its expires_at');
  const orphans = await q
    .selectFrom('packages')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where((eb) => eb.not(eb.exists(eb.selectFrom('deliveries').select('id').whereRef('deliveries.package_id', '=', 'packages.id'))))
    .executeTakeFirstOrThrow();
  t.comment(`${orphans.n} sealed packages of killed requests without a letter (removed by the storage retention sweep)`);

  proc.child.kill('SIGTERM');
  await proc.exited;
});
