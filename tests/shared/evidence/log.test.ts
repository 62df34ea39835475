import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import t from 'tap';
import { service } from '../../../services/storage/app.js';
import { verify } from '../../../scripts/commands/verify.js';
import { loadConfig } from '../../../shared/config/config.js';
import { appendEvents } from '../../../shared/evidence/events.js';
import { auditLog, HEAD_TYP, LOG_ID, loadTree, sequenceAll, sequenceEvents, withTree, type SignedHead } from '../../../shared/evidence/log.js';
import { verifyConsistencyDocument, type ConsistencyDocument } from '../../../shared/evidence/verify-bundle.js';
import { storageContext } from '../../../shared/storage/context.js';
import { testService } from '../../helpers/service.js';
import { waitFor } from '../../helpers/wait.js';

const SENDER = '974760673';
const run = promisify(execFile);
const hasPython = await run('python3', ['-c', 'import cryptography']).then(
  () => true,
  () => false,
);

/** The independent verifier on a consistency document: its exit code and problem codes. */
async function python(args: string[]): Promise<{ code: number; valid: boolean; problems: { code: string }[] }> {
  try {
    const { stdout } = await run('python3', ['scripts/verify-bundle.py', ...args]);
    return { code: 0, ...(JSON.parse(stdout) as { valid: boolean; problems: { code: string }[] }) };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, ...(JSON.parse(e.stdout) as { valid: boolean; problems: { code: string }[] }) };
  }
}

t.test('the Merkle log over all events: heads, history, consistency', async (t) => {
  const svc = await testService(t, service);
  const db = svc.deps.db.kysely;
  const hub = storageContext(svc.deps).hub;
  const get = (url: string) => svc.app.inject({ method: 'GET', url });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'heads-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const jwks = (await get('/.well-known/jwks.json')).json() as { keys: never[] };

  /** `letters` letters of three events each (SEALED, DELIVERED with a receipt, NOTIFIED), in batches. */
  const letters = async (n: number) => {
    for (let i = 0; i < n; i += 200) {
      const ids = Array.from({ length: Math.min(200, n - i) }, () => randomUUID());
      await appendEvents(
        db,
        hub,
        ids.flatMap((messageId) => ['SEALED', 'DELIVERED', 'NOTIFIED'].map((type) => ({ messageId, senderOrgnr: SENDER, type, data: { channel: 'email' } }))),
      );
    }
  };

  t.equal((await get('/v1/evidence/head')).json().type, 'https://postbud.dev/problems/storage/head-not-found', 'no head before the sequencer first runs');
  await letters(3);
  const h1 = (await sequenceAll(db, hub)).head!;
  t.match(h1, { log: LOG_ID, treeSize: 9 });
  t.same((await get('/v1/evidence/head')).json(), h1, 'the latest head is published');
  const payload = JSON.parse(Buffer.from(h1.jws.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
  t.same(payload, { log: LOG_ID, treeSize: 9, rootHash: h1.rootHash, timestamp: h1.timestamp }, 'the JWS signs exactly the head');
  t.equal(JSON.parse(Buffer.from(h1.jws.split('.')[0]!, 'base64url').toString()).typ, HEAD_TYP);
  t.equal((await sequenceEvents(db, hub)).head, undefined, 'nothing new: no new head');

  await letters(1000);
  const middle = await sequenceEvents(db, hub, { batch: 1000 });
  t.equal(middle.head!.treeSize, 1009, 'a sequencer run takes at most its batch');
  const h2 = (await sequenceAll(db, hub, { batch: 1000 })).head!;
  t.equal(h2.treeSize, 9 + 3000);
  const { tree, complete } = await loadTree(db, h2.treeSize);
  t.ok(complete);
  t.equal(tree.hash().toString('hex'), h2.rootHash, "the head's root is the RFC 9162 hash of every event in the log, as the database holds them");
  t.same(await auditLog(db), { treeSize: 3009, ok: true });
  // Proofs are served from the stored subtrees (level 4 and up) and a few leaves: the same proofs.
  const nodes = await db.selectFrom('evidence_log_nodes').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
  t.ok(Number(nodes.n) > 3009 / 16, `perfect subtrees stored (${nodes.n})`);
  const served = await withTree(db, 3009, (x) => [x.hash().toString('hex'), x.inclusionProof(1234, 3009), x.consistencyProof(9, 3009)] as const);
  t.ok(served.complete);
  t.equal(served.result![0], h2.rootHash);
  t.same(served.result![1], tree.inclusionProof(1234, 3009));
  t.same(served.result![2], tree.consistencyProof(9, 3009));

  await t.test('heads are kept and listed in pages', async (t) => {
    const page = (await get('/v1/evidence/heads?limit=2')).json() as { heads: SignedHead[]; nextAfter: number };
    t.same(page.heads.map((h) => h.treeSize), [9, 1009]);
    t.equal(page.nextAfter, 1009);
    const rest = (await get(`/v1/evidence/heads?after=${page.nextAfter}&limit=100`)).json() as { heads: SignedHead[]; nextAfter: null };
    t.same(rest.heads.map((h) => h.treeSize), [2009, 3009]);
    t.equal(rest.nextAfter, null);
    const bad = await get('/v1/evidence/heads?limit=0');
    t.equal(bad.statusCode, 400);
    t.equal(bad.headers['content-type'], 'application/problem+json; charset=utf-8');
    await t.rejects(sql`update evidence_heads set root_hash = 'x'`.execute(db), { message: /append-only/ }, 'heads cannot be rewritten');
  });

  const fetchConsistency = async (first: number, second: number) => get(`/v1/evidence/consistency?first=${first}&second=${second}`);

  await t.test('the heads before and after a thousand letters are consistent, checked offline', async (t) => {
    const res = await fetchConsistency(h1.treeSize, h2.treeSize);
    t.equal(res.statusCode, 200, res.body);
    const doc = res.json() as ConsistencyDocument;
    t.match(await verifyConsistencyDocument(doc, { jwks, held: h1 }), { valid: true, first: 9, second: 3009, problems: [] });
    writeFileSync(path.join(dir, 'c.json'), JSON.stringify(doc));
    writeFileSync(path.join(dir, 'h1.json'), JSON.stringify(h1));
    writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify(jwks));
    let printed = '';
    const offline = loadConfig({ LOG_LEVEL: 'silent' });
    t.equal(await verify(offline, ['--consistency', path.join(dir, 'c.json'), '--head', path.join(dir, 'h1.json'), '--jwks', path.join(dir, 'jwks.json')], (s) => (printed += s)), 0);
    t.match(JSON.parse(printed), { valid: true });
    if (hasPython || process.env.CI === 'true') {
      t.match(await python(['--consistency', path.join(dir, 'c.json'), '--head', path.join(dir, 'h1.json'), '--jwks', path.join(dir, 'jwks.json')]), { code: 0, valid: true }, 'the Python verifier agrees');
    }
    const bogus = { ...doc, proof: doc.proof.slice(1) };
    t.match(await verifyConsistencyDocument(bogus, { jwks }), { valid: false, problems: [{ code: 'consistency' }] }, 'a wrong proof fails');
    const notHeld = await verifyConsistencyDocument((await fetchConsistency(1009, h2.treeSize)).json(), { jwks, held: h1 });
    t.match(notHeld.problems, [{ code: 'head-mismatch' }], 'a proof from another head than the one you hold is named');
    t.equal((await fetchConsistency(5, h2.treeSize)).statusCode, 404, 'only published heads');
    t.equal((await fetchConsistency(h2.treeSize, h1.treeSize)).json().type, 'https://postbud.dev/problems/storage/invalid-head-range');
    t.equal((await get('/v1/evidence/consistency?first=x&second=1')).statusCode, 400);
  });

  await t.test('after a superuser deletes one event, the old head no longer verifies against the log', async (t) => {
    await t.rejects(sql`delete from message_events where leaf_index = 4`.execute(db), { message: /append-only/ }, 'the application role cannot');
    await db.transaction().execute(async (trx) => {
      await sql`set local session_replication_role = replica`.execute(trx);
      await sql`delete from message_events where leaf_index = 4`.execute(trx);
    });
    const res = await fetchConsistency(h1.treeSize, h2.treeSize);
    t.equal(res.statusCode, 409, 'the hub cannot prove the heads consistent any more');
    t.equal(res.json().type, 'https://postbud.dev/problems/storage/log-incomplete');
    t.match(await auditLog(db), { ok: false, problem: /holds 3008 of the 3009 leaves/ }, 'the audit over every event notices too');
    let printed = '';
    t.equal(await verify(loadConfig({ LOG_LEVEL: 'silent', DATABASE_URL: svc.config.DATABASE_URL }), ['--log'], (s) => (printed += s)), 1, '`postbud verify --log` fails');
    t.match(JSON.parse(printed), { ok: false, treeSize: 3009 });
    // The best a hub hiding the deletion could do: sign a head over the events that remain.
    const { tree } = await loadTree(db, h2.treeSize);
    const timestamp = new Date().toISOString();
    const rewritten = { log: LOG_ID, treeSize: tree.size, rootHash: tree.hash().toString('hex'), timestamp };
    const forgedHead = { ...rewritten, jws: await hub.sign(Buffer.from(JSON.stringify(rewritten)), { typ: HEAD_TYP }) };
    const doc = { first: h1, second: forgedHead, proof: tree.consistencyProof(h1.treeSize, tree.size).map((b) => b.toString('hex')), keys: { keys: jwks.keys } };
    const r = await verifyConsistencyDocument(doc, { jwks, held: h1 });
    t.equal(r.valid, false);
    t.match(r.problems, [{ code: 'consistency', message: /removed or rewritten/ }], 'a verifier holding the old head detects it');
    if (hasPython || process.env.CI === 'true') {
      writeFileSync(path.join(dir, 'forged.json'), JSON.stringify(doc));
      t.match(await python(['--consistency', path.join(dir, 'forged.json'), '--head', path.join(dir, 'h1.json'), '--jwks', path.join(dir, 'jwks.json')]), { code: 1, problems: [{ code: 'consistency' }] }, 'and so does the Python verifier');
    }
  });
});

t.test('the storage service signs heads at a fixed interval in the background', async (t) => {
  const svc = await testService(t, service, { env: { EVIDENCE_HEAD_SECONDS: '1' } });
  const db = svc.deps.db.kysely;
  const background = await service.startBackground!(svc.deps);
  t.teardown(() => background.stop());
  await appendEvents(db, storageContext(svc.deps).hub, [{ messageId: randomUUID(), senderOrgnr: SENDER, type: 'SEALED' }]);
  const head = await waitFor('a head covering the event', async () => {
    const r = await svc.app.inject({ method: 'GET', url: '/v1/evidence/head' });
    return r.statusCode === 200 && (r.json() as SignedHead).treeSize === 1 ? (r.json() as SignedHead) : undefined;
  });
  t.equal(head.treeSize, 1);
  const leaf = await db.selectFrom('message_events').select('leaf_index').executeTakeFirstOrThrow();
  t.equal(Number(leaf.leaf_index), 0);
});
