import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import t, { type Test } from 'tap';
import { service } from '../../../services/ingestion/app.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { connectDb } from '../../../shared/db/connect.js';
import { testService } from '../../helpers/service.js';
import { waitFor } from '../../helpers/wait.js';
import { letter, multipart, newKey, PDF, PERSONS, seedRegistry, SENDER } from './fixtures.js';

/**
 * Group commit: letters held at the commit's control point (the group's pause) form one batch
 * when released, so each test knows exactly which letters shared a transaction.
 */
t.test('group commit', async (t) => {
  const svc = await testService(t, service, { env: { INTAKE_BATCH_WINDOW_MS: '0' } });
  const db = svc.deps.db.kysely;
  const intake = svc.app.intake!;
  await seedRegistry(db);
  const token = await svc.token({ org: SENDER, scope: SCOPES.send });

  const send = (message: unknown, opts: { key?: string; doc?: Buffer } = {}) => {
    const body = multipart(message, [{ name: 'vedtak.pdf', content: opts.doc ?? PDF() }]);
    return svc.app.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: { authorization: `Bearer ${token}`, 'content-type': body.contentType, 'idempotency-key': opts.key ?? newKey() },
      payload: body.payload,
    });
  };
  /** Sends the letters while the commit is paused, waits until all of them wait for it, then lets them go as one batch. */
  const oneBatch = async (t: Test, letters: (() => ReturnType<typeof send>)[], meanwhile?: () => Promise<void>) => {
    const release = intake.commit.pause();
    const before = new Map(intake.batchSizes);
    const answers = letters.map((l) => l());
    await waitFor(`${letters.length} letters waiting for the commit`, async () => intake.commit.queued === letters.length);
    await meanwhile?.();
    release();
    const results = await Promise.all(answers);
    const grew = [...intake.batchSizes].find(([size, n]) => n > (before.get(size) ?? 0));
    t.equal(grew?.[0], letters.length, `the ${letters.length} letters committed as one batch`);
    return results;
  };
  const count = async (table: 'messages' | 'deliveries' | 'idempotency_keys', ids: string[]) => {
    const column = table === 'idempotency_keys' || table === 'deliveries' ? 'message_id' : 'id';
    const r = await db.selectFrom(table).select((eb) => eb.fn.countAll<string>().as('n')).where(column, 'in', ids).executeTakeFirstOrThrow();
    return Number(r.n);
  };

  await t.test('a recipient that became reserved fails alone; the rest of the batch commits', async (t) => {
    const results = await oneBatch(t, 
      [
        () => send(letter({ senderReference: 'b1-1' })),
        () => send(letter({ senderReference: 'b1-2', recipient: { personId: PERSONS.eboks } })),
        () => send(letter({ senderReference: 'b1-3' })),
        () => send(letter({ senderReference: 'b1-4' })),
      ],
      // After the letters were routed and sealed, before their commit.
      async () => void (await sql`update persons set reserved = true, reserved_at = now() where person_id = ${PERSONS.eboks}`.execute(db)),
    );
    t.teardown(() => sql`update persons set reserved = false, reserved_at = null where person_id = ${PERSONS.eboks}`.execute(db));
    t.same(results.map((r) => r.statusCode), [201, 422, 201, 201]);
    t.equal(results[1]!.headers['content-type'], 'application/problem+json; charset=utf-8');
    t.equal(results[1]!.json().type, 'https://postbud.dev/problems/ingestion/recipient-reserved');
    const ids = [0, 2, 3].map((i) => results[i]!.json().id as string);
    t.equal(await count('messages', ids), 3, 'the three others are written');
    t.equal(await count('deliveries', ids), 3);
    const refused = await db.selectFrom('messages').select('id').where('sender_reference', '=', 'b1-2').execute();
    t.same(refused, [], 'nothing of the refused letter is written');
  });

  await t.test('letters read in memory are routed by their commit: each unroutable recipient fails alone with its own 422, the rest commit', async (t) => {
    const results = await oneBatch(t, [
      () => send(letter({ senderReference: 'r-1' })),
      () => send(letter({ senderReference: 'r-2', recipient: { personId: PERSONS.notRegistered } })),
      () => send(letter({ senderReference: 'r-3', recipient: { personId: PERSONS.reserved } })),
      () => send(letter({ senderReference: 'r-4', recipient: { personId: PERSONS.eboks } })),
      () => send(letter({ senderReference: 'r-5', recipient: { personId: PERSONS.noMailbox } })),
      () => send(letter({ senderReference: 'r-6', recipient: { personId: PERSONS.deleted } })),
    ]);
    t.same(results.map((r) => r.statusCode), [201, 422, 422, 201, 422, 422]);
    t.same(
      [1, 2, 4, 5].map((i) => results[i]!.json().type),
      ['invalid-recipient', 'recipient-reserved', 'no-digital-mailbox', 'recipient-deleted'].map((slug) => `https://postbud.dev/problems/ingestion/${slug}`),
    );
    t.same([results[0]!.json().provider.name, results[3]!.json().provider.name], ['Digipost', 'e-Boks'], 'each routed to its own provider');
    const ids = [0, 3].map((i) => results[i]!.json().id as string);
    t.equal(await count('deliveries', ids), 2);
    const refused = await db.selectFrom('messages').select('id').where('sender_reference', 'in', ['r-2', 'r-3', 'r-5', 'r-6']).execute();
    t.same(refused, [], 'nothing of the refused letters is written');
    const stored = await db.selectFrom('idempotency_keys').select('response').where('message_id', 'in', ids).execute();
    t.same(stored.map((k) => (k.response as { route: string }).route).sort(), ['DIGITAL', 'DIGITAL'], 'the stored answers carry the route chosen at commit');
  });

  await t.test('two requests with the same Idempotency-Key in one batch: one letter, the other gets its answer replayed', async (t) => {
    const key = newKey();
    const doc = PDF();
    const message = letter({ senderReference: 'same-key' });
    const results = await oneBatch(t, [() => send(message, { key, doc }), () => send(message, { key, doc })]);
    t.same(results.map((r) => r.statusCode), [201, 201]);
    t.same(results[1]!.json(), results[0]!.json(), 'the same answer');
    t.same(results.map((r) => r.headers['idempotent-replayed'] ?? null).sort(), [null, 'true'], 'one of them is the replay');
    const messages = await db.selectFrom('messages').select('id').where('sender_reference', '=', 'same-key').execute();
    t.same(messages, [{ id: results[0]!.json().id }], 'one letter');
    const later = await send(message, { key, doc });
    t.equal(later.headers['idempotent-replayed'], 'true', 'and a later retry replays it too');
    t.equal(later.json().id, results[0]!.json().id);
  });

  await t.test('the same key with another body in one batch: 422 for it, the first commits', async (t) => {
    const key = newKey();
    const results = await oneBatch(t, [() => send(letter({ senderReference: 'k2-a' }), { key }), () => send(letter({ senderReference: 'k2-b' }), { key })]);
    // Which of the two is first in the batch depends on which finished sealing first.
    const [won, lost] = results[0]!.statusCode === 201 ? results : [results[1]!, results[0]!];
    t.same([won!.statusCode, lost!.statusCode], [201, 422]);
    t.equal(lost!.json().type, 'https://postbud.dev/problems/ingestion/idempotency-key-reused');
    t.equal(lost!.json().messageId, won!.json().id);
  });

  await t.test('a duplicate senderReference in one batch fails only that letter', async (t) => {
    const results = await oneBatch(t, [() => send(letter({ senderReference: 'dup-ref' })), () => send(letter({ senderReference: 'dup-ref' })), () => send(letter({ senderReference: 'dup-ok' }))]);
    t.same([results[0]!.statusCode, results[1]!.statusCode].sort(), [201, 409], 'one of the two with the same reference commits');
    t.equal(results.find((r) => r.statusCode === 409)!.json().type, 'https://postbud.dev/problems/ingestion/duplicate-sender-reference');
    t.equal(results[2]!.statusCode, 201, 'the other letter commits');
  });

  await t.test('a key another transaction is committing right now is 409 in flight; the rest commit', async (t) => {
    const key = newKey();
    const other = connectDb(svc.deps.config.DATABASE_URL!, { poolSize: 1 });
    t.teardown(() => other.close());
    const client = await other.pool.connect();
    t.teardown(() => client.release());
    await client.query('begin');
    await client.query('select pg_advisory_xact_lock(hashtextextended($1, 0))', [`idempotency:${SENDER}:${key}`]);
    const results = await oneBatch(t, [() => send(letter(), { key }), () => send(letter())]);
    await client.query('rollback');
    t.same(results.map((r) => r.statusCode), [409, 201]);
    t.equal(results[0]!.json().type, 'https://postbud.dev/problems/ingestion/idempotency-in-flight');
    t.equal(results[0]!.headers['retry-after'], '1');
    const retry = await send(letter(), { key });
    t.equal(retry.statusCode, 201, 'the retry goes through once the other transaction is gone');
  });

  await t.test('a constraint violation in the batch statement (a concurrent senderReference) fails that letter alone', async (t) => {
    // Another transaction holds an uncommitted letter with senderReference "race": the batch's
    // lookup cannot see it, so its insert waits on the unique index, and fails once that
    // transaction commits. The batch rolls back and is run again letter by letter.
    const other = connectDb(svc.deps.config.DATABASE_URL!, { poolSize: 1 });
    t.teardown(() => other.close());
    const client = await other.pool.connect();
    t.teardown(() => client.release());
    const racer = randomUUID();
    await client.query('begin');
    await client.query(
      `insert into messages (id, sender_orgnr, sender_reference, person_id, title, language, security_level, available_at, route, provider_orgnr, package_id, manifest_sha256, documents)
       values ($1, $2, 'race', $3, 'x', 'nb', 3, now(), 'DIGITAL', '984661185', $4, 'x', '[]')`,
      [racer, SENDER, PERSONS.digital, randomUUID()],
    );
    const release = intake.commit.pause();
    const answers = [send(letter({ senderReference: 'race-ok-1' })), send(letter({ senderReference: 'race' })), send(letter({ senderReference: 'race-ok-2' }))];
    await waitFor('3 letters waiting for the commit', async () => intake.commit.queued === 3);
    release();
    await waitFor('the batch waiting on the unique index', async () => {
      const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query like '%insert into idempotency_keys%'`.execute(db);
      return rows[0]!.n > 0;
    });
    await client.query('commit');
    const results = await Promise.all(answers);
    t.same(results.map((r) => r.statusCode), [201, 409, 201]);
    t.equal(results[1]!.json().type, 'https://postbud.dev/problems/ingestion/duplicate-sender-reference');
    t.equal(results[1]!.json().messageId, racer);
    t.equal(await count('messages', [results[0]!.json().id, results[2]!.json().id]), 2);
  });

  await t.test('batch sizes are exported as a metric', async (t) => {
    const res = await svc.app.inject({ url: '/metrics' });
    t.match(res.body, /ingestion_intake_batch_letters_bucket\{le="4",service="ingestion"\} [1-9]/);
  });
});
