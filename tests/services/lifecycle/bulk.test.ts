import t from 'tap';
import { service as ingestion } from '../../../services/ingestion/app.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { testService } from '../../helpers/service.js';
import { letter, newKey, PDF, PERSONS, seedRegistry, SENDER, SUSPENDED_SENDER } from '../ingestion/fixtures.js';
import { batchBody, type BatchLetter } from './batch.js';

const P = 'https://postbud.dev/problems/';

t.test('bulk send: many letters in one request, each with its own result and idempotency', async (t) => {
  const ing = await testService(t, ingestion, { env: { BATCH_MAX_LETTERS: '6', BATCH_MAX_BYTES: String(200_000) } });
  const db = ing.deps.db.kysely;
  await seedRegistry(db);
  const sender = { authorization: `Bearer ${await ing.token({ org: SENDER, scope: SCOPES.send })}` };
  const post = (body: { payload: Buffer; contentType: string }, headers: Record<string, string> = sender) =>
    ing.app.inject({ method: 'POST', url: '/v1/messages/batch', headers: { ...headers, 'content-type': body.contentType }, payload: body.payload });
  const doc = (size = 3000) => [{ name: 'vedtak.pdf', content: PDF(size) }];
  const messages = async () => (await db.selectFrom('messages').select('id').execute()).length;

  const batch: BatchLetter[] = [
    { idempotencyKey: newKey(), message: letter({ senderReference: 'bulk-1' }), documents: doc() },
    { idempotencyKey: newKey(), message: letter({ recipient: { personId: '12345678901' } }), documents: doc() },
    { idempotencyKey: newKey(), message: letter({ recipient: { personId: PERSONS.eboks }, senderReference: 'bulk-3' }), documents: doc() },
    { idempotencyKey: newKey(), message: letter({ recipient: { personId: PERSONS.reserved } }), documents: doc() },
    { idempotencyKey: newKey(), message: letter(), documents: [] },
    { idempotencyKey: newKey(), message: letter({ senderReference: 'bulk-6' }), documents: doc() },
  ];

  await t.test('each letter gets what a single send would have answered', async (t) => {
    const res = await post(batchBody(batch));
    t.equal(res.statusCode, 200, res.body);
    const body = res.json() as { letters: number; accepted: number; failed: number; results: { index: number; idempotencyKey: string; status: number; message?: { id: string; route: string; provider: { orgnr: string } }; problem?: { type: string } }[] };
    t.match(body, { letters: 6, accepted: 3, failed: 3 });
    t.same(body.results.map((r) => r.status), [201, 400, 201, 422, 400, 201]);
    t.same(body.results.map((r) => r.idempotencyKey), batch.map((b) => b.idempotencyKey), 'in request order, with their keys');
    t.equal(body.results[1]!.problem!.type, `${P}ingestion/invalid-person-id`);
    t.equal(body.results[3]!.problem!.type, `${P}ingestion/recipient-reserved`);
    t.equal(body.results[4]!.problem!.type, `${P}ingestion/missing-document`);
    t.match(body.results[2]!.message, { route: 'DIGITAL', provider: { orgnr: '922020175' } }, 'routed per recipient');
    const ids = body.results.filter((r) => r.status === 201).map((r) => r.message!.id);
    const rows = await db.selectFrom('messages').innerJoin('deliveries', 'deliveries.message_id', 'messages.id').select(['messages.id', 'messages.sender_reference']).where('messages.id', 'in', ids).execute();
    t.equal(rows.length, 3, 'every accepted letter has its message and delivery');
    t.equal(await messages(), 3);

    // The same batch again: accepted letters are replayed (no new letters), failures fail again.
    const again = (await post(batchBody(batch))).json() as typeof body;
    t.same(again.results.map((r) => r.status), [201, 400, 201, 422, 400, 201]);
    t.same(again.results.filter((r) => r.status === 201).map((r) => r.message!.id), ids, 'the same letters');
    t.ok(again.results.filter((r) => r.status === 201).every((r) => (r as { replayed?: boolean }).replayed), 'marked replayed');
    t.equal(await messages(), 3, 'nothing new');

    // A key of this batch with another letter: 422 for that letter only.
    const reuse = (await post(batchBody([{ ...batch[0]!, message: letter({ title: 'Another letter', senderReference: 'bulk-1' }) }, { idempotencyKey: newKey(), message: letter(), documents: doc() }]))).json() as typeof body;
    t.same(reuse.results.map((r) => r.status), [422, 201]);
    t.equal(reuse.results[0]!.problem!.type, `${P}ingestion/idempotency-key-reused`);
    // A senderReference already used: 409 for that letter.
    const dup = (await post(batchBody([{ idempotencyKey: newKey(), message: letter({ senderReference: 'bulk-3' }), documents: doc() }]))).json() as typeof body;
    t.equal(dup.results[0]!.problem!.type, `${P}ingestion/duplicate-sender-reference`);
  });

  await t.test('a batch malformed as a whole makes no letter', async (t) => {
    const before = await messages();
    const cases: [string, { payload: Buffer; contentType: string }, number, string][] = [
      ['documents before any letter', batchBody([{ idempotencyKey: newKey(), message: letter(), documents: doc() }], { leadingFile: true }), 400, 'ingestion/invalid-batch'],
      ['the same key twice', batchBody([{ idempotencyKey: 'k-1', message: letter(), documents: doc() }, { idempotencyKey: 'k-1', message: letter(), documents: doc() }]), 400, 'ingestion/invalid-batch'],
      ['a letter part that is not JSON', batchBody([{ idempotencyKey: 'x', message: null, documents: doc() }], { rawLetter: '{not json' }), 400, 'ingestion/invalid-batch'],
      ['a letter part without a key', batchBody([{ idempotencyKey: 'x', message: null, documents: doc() }], { rawLetter: JSON.stringify({ message: letter() }) }), 400, 'ingestion/invalid-batch'],
      ['an unknown field in the letter part', batchBody([{ idempotencyKey: 'x', message: null, documents: doc() }], { rawLetter: JSON.stringify({ idempotencyKey: 'a', message: letter(), extra: 1 }) }), 400, 'ingestion/invalid-batch'],
      ['a key with a space', batchBody([{ idempotencyKey: 'a b', message: letter(), documents: doc() }]), 400, 'ingestion/invalid-batch'],
      ['more letters than allowed', batchBody(Array.from({ length: 7 }, () => ({ idempotencyKey: newKey(), message: letter(), documents: doc(500) }))), 413, 'ingestion/batch-too-large'],
      ['more bytes than allowed', batchBody([{ idempotencyKey: newKey(), message: letter(), documents: doc(120_000) }, { idempotencyKey: newKey(), message: letter(), documents: doc(120_000) }]), 413, 'ingestion/batch-too-large'],
      ['no letters at all', batchBody([]), 400, 'ingestion/invalid-batch'],
    ];
    for (const [what, body, status, type] of cases) {
      const res = await post(body);
      t.equal(res.statusCode, status, `${what}: ${res.body}`);
      t.equal(res.json().type, `${P}${type}`, what);
      t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8');
    }
    const notMultipart = await ing.app.inject({ method: 'POST', url: '/v1/messages/batch', headers: { ...sender, 'content-type': 'application/json' }, payload: '{}' });
    t.equal(notMultipart.statusCode, 415);
    t.equal(await messages(), before, 'no letter was made');
  });

  await t.test('who may send a batch', async (t) => {
    const body = () => batchBody([{ idempotencyKey: newKey(), message: letter(), documents: doc() }]);
    t.equal((await post(body(), {})).statusCode, 401);
    t.equal((await post(body(), { authorization: `Bearer ${await ing.token({ org: SENDER, scope: SCOPES.provider })}` })).statusCode, 403, 'needs the send scope');
    const suspended = await post(body(), { authorization: `Bearer ${await ing.token({ org: SUSPENDED_SENDER, scope: SCOPES.send })}` });
    t.equal(suspended.statusCode, 403);
    t.equal(suspended.json().type, `${P}ingestion/sender-suspended`);
  });
});
