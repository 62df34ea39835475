import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CompactSign, exportJWK, generateKeyPair } from 'jose';
import t from 'tap';
import { service } from '../../../services/ingestion/app.js';
import { verify } from '../../../scripts/commands/verify.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { loadConfig } from '../../../shared/config/config.js';
import { eventHash } from '../../../shared/evidence/chain.js';
import { appendEvent } from '../../../shared/evidence/events.js';
import { sequenceAll } from '../../../shared/evidence/log.js';
import { statementEvent, type EvidenceBundle } from '../../../shared/evidence/bundle.js';
import { verifyBundle, type ProblemCode } from '../../../shared/evidence/verify-bundle.js';
import { storageContext } from '../../../shared/storage/context.js';
import { testService } from '../../helpers/service.js';
import { DIGIPOST, letter, multipart, newKey, OTHER_SENDER, PDF, seedRegistry, SENDER } from '../../services/ingestion/fixtures.js';

const run = promisify(execFile);
// In CI (.ci/run installs python3-cryptography) the independent verifier always runs.
const hasPython = await run('python3', ['-c', 'import cryptography']).then(
  () => true,
  () => false,
);
if (!hasPython && process.env.CI === 'true') throw new Error('CI=true but python3 with cryptography is missing: the independent verifier must run in CI');
const PY = path.resolve('scripts/verify-bundle.py');

/** The independent verifier: its problem codes, and its exit code. */
async function python(dir: string, bundle: unknown, jwks?: unknown): Promise<{ code: number; valid: boolean; problems: { code: string; where: string }[] }> {
  const file = path.join(dir, `b-${createHash('sha256').update(JSON.stringify(bundle)).digest('hex').slice(0, 12)}.json`);
  writeFileSync(file, JSON.stringify(bundle));
  const args = [PY, file];
  if (jwks) {
    writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify(jwks));
    args.push('--jwks', path.join(dir, 'jwks.json'));
  }
  try {
    const { stdout } = await run('python3', args);
    return { code: 0, ...(JSON.parse(stdout) as { valid: boolean; problems: { code: string; where: string }[] }) };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, ...(JSON.parse(e.stdout) as { valid: boolean; problems: { code: string; where: string }[] }) };
  }
}

const clone = (b: EvidenceBundle): EvidenceBundle => JSON.parse(JSON.stringify(b)) as EvidenceBundle;
const payloadOf = (jws: string) => JSON.parse(Buffer.from(jws.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

t.test('evidence bundle: served to the sender, verified offline by both verifiers, every tampering named', async (t) => {
  const svc = await testService(t, service);
  const db = svc.deps.db.kysely;
  const hub = storageContext(svc.deps).hub;
  await seedRegistry(db);
  const token = await svc.token({ org: SENDER, scope: SCOPES.send });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bundle-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  const pdf = PDF(4000);
  const send = async (over: Record<string, unknown> = {}) => {
    const b = multipart(letter(over), [{ name: 'vedtak.pdf', content: pdf }]);
    const res = await svc.app.inject({ method: 'POST', url: '/v1/messages', headers: { authorization: `Bearer ${token}`, 'content-type': b.contentType, 'idempotency-key': newKey() }, payload: b.payload });
    t.equal(res.statusCode, 201, res.body);
    return (res.json() as { id: string }).id;
  };
  const id = await send();
  const other = await send();
  for (const m of [id, other]) {
    await appendEvent(db, hub, { messageId: m, senderOrgnr: SENDER, type: 'DELIVERED', data: { deliveryId: 'd', providerOrgnr: DIGIPOST } });
    await appendEvent(db, hub, { messageId: m, senderOrgnr: SENDER, type: 'NOTIFIED', data: { channel: 'email', repetition: 0 } });
    await appendEvent(db, hub, { messageId: m, senderOrgnr: SENDER, type: 'OPENED', data: { securityLevel: 4 } });
  }
  // A letter sent without openReceipt, opened, then moved: the opening is not the sender's to see.
  // Its OPENED is appended with a receipt (appendEvent's default) so that the bundle is shown to
  // leave out such a receipt too; the storage service makes none (senderGetsReceipt).
  const closed = await send({ openReceipt: false });
  const base = Date.now();
  const openedAt = new Date(base + 1_234);
  await appendEvent(db, hub, { messageId: closed, senderOrgnr: SENDER, type: 'DELIVERED', data: { deliveryId: 'd', providerOrgnr: DIGIPOST }, at: new Date(base) });
  await appendEvent(db, hub, { messageId: closed, senderOrgnr: SENDER, type: 'NOTIFIED', data: { channel: 'email', repetition: 0 }, at: new Date(base + 500) });
  const opened = await appendEvent(db, hub, { messageId: closed, senderOrgnr: SENDER, type: 'OPENED', data: { securityLevel: 4 }, at: openedAt });
  await appendEvent(db, hub, { messageId: closed, senderOrgnr: SENDER, type: 'MOVED_OUT', data: { fromProvider: DIGIPOST }, at: new Date(base + 2_000) });
  await sequenceAll(db, hub);
  const get = async (m: string, tok = token) => svc.app.inject({ method: 'GET', url: `/v1/messages/${m}/evidence`, headers: { authorization: `Bearer ${tok}` } });
  const res = await get(id);
  t.equal(res.statusCode, 200, res.body);
  const bundle = res.json() as EvidenceBundle;
  const otherBundle = (await get(other)).json() as EvidenceBundle;
  const closedRes = await get(closed);
  t.equal(closedRes.statusCode, 200, closedRes.body);
  const redacted = closedRes.json() as EvidenceBundle;
  const jwks = (await svc.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json() as { keys: never[] };

  await t.test('the bundle holds the chain, receipts, the documents as sent, the head and the keys', async (t) => {
    t.same(bundle.events.map((e) => e.type), ['SEALED', 'DELIVERED', 'NOTIFIED', 'OPENED'], 'with openReceipt, OPENED in full');
    t.ok(bundle.events.every((e) => e.redacted === false && e.at !== null && e.data !== null), 'nothing redacted');
    t.same(payloadOf(bundle.statement).events, bundle.events.map((e) => ({ seq: e.seq, type: e.type, hash: e.hash })), 'the statement lists each event with its type');
    t.same(bundle.receipts.map((r) => r.type), ['DELIVERED', 'NOTIFIED', 'OPENED']);
    t.same(bundle.documents, [{ sha256: createHash('sha256').update(pdf).digest('hex'), size: pdf.length }], "the SEALED event's hash is that of the bytes the sender sent");
    t.match(bundle.manifestSha256, /^[0-9a-f]{64}$/);
    t.ok(bundle.head && bundle.head.treeSize >= 8, 'a signed head over both letters');
    t.ok(bundle.events.every((e) => e.leafIndex !== null && Array.isArray(e.inclusionProof)), 'an inclusion proof per event');
    t.same(bundle.keys.keys.map((k) => k.kid), [jwks.keys[0]!['kid']], 'the one key that signed it all, as published');
    t.notOk(JSON.stringify(bundle).includes('Vedtak om tilskudd'), 'no title');
  });

  await t.test('only the sender, with the send scope, gets it', async (t) => {
    const otherToken = await svc.token({ org: OTHER_SENDER, scope: SCOPES.send });
    const r = await get(id, otherToken);
    t.equal(r.statusCode, 404);
    t.equal(r.headers['content-type'], 'application/problem+json; charset=utf-8');
    t.equal(r.json().type, 'https://postbud.dev/problems/ingestion/message-not-found');
    t.equal((await get(crypto.randomUUID())).statusCode, 404);
    t.equal((await get('nope')).statusCode, 400);
    t.equal((await get(id, await svc.token({ org: SENDER, scope: SCOPES.provider }))).statusCode, 403);
  });

  await t.test('it verifies offline: postbud verify --bundle, and the Python verifier', async (t) => {
    t.match(await verifyBundle(bundle, { jwks }), { valid: true, problems: [], events: 4, receipts: 3, pending: [] });
    writeFileSync(path.join(dir, 'bundle.json'), JSON.stringify(bundle));
    writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify(jwks));
    let printed = '';
    const offline = loadConfig({ LOG_LEVEL: 'silent' });
    t.equal(await verify(offline, ['--bundle', path.join(dir, 'bundle.json'), '--jwks', path.join(dir, 'jwks.json')], (s) => (printed += s)), 0, 'no DATABASE_URL needed');
    t.match(JSON.parse(printed), { valid: true, messageId: id, keysChecked: /given JWKS/ });
    if (hasPython) t.match(await python(dir, bundle, jwks), { code: 0, valid: true, problems: [] });
    else t.comment('python3 with cryptography is not installed here: the independent verifier was skipped');
    await t.rejects(verify(offline, ['--bundle'], () => undefined), { message: /usage/ });
    t.match(await verifyBundle({ ...bundle, events: [null] }), { valid: false, problems: [{ code: 'format' }] }, 'a broken document is a format problem, not a crash');
    t.match(await verifyBundle('nonsense'), { valid: false, problems: [{ code: 'format' }] });
    if (hasPython) t.match(await python(dir, { ...bundle, events: [null] }), { code: 1, problems: [{ code: 'format' }] });
    await t.rejects(verify(offline, ['--bundle', path.join(dir, 'missing.json')], () => undefined), { message: /cannot read/ });
  });

  await t.test('an event not yet in the log is pending, not a failure', async (t) => {
    await appendEvent(db, hub, { messageId: other, senderOrgnr: SENDER, type: 'PURGED', data: {} });
    const b = (await get(other)).json() as EvidenceBundle;
    t.equal(b.events.at(-1)!.leafIndex, null);
    t.match(await verifyBundle(b, { jwks }), { valid: true, pending: [5] });
    if (hasPython) t.match(await python(dir, b, jwks), { valid: true });
  });

  const forged = await generateKeyPair('ES256');
  const forgedJwk = { ...(await exportJWK(forged.publicKey)), kid: 'hub-forged', alg: 'ES256', use: 'sig' };
  const resign = async (payload: unknown, typ: string) =>
    new CompactSign(Buffer.from(JSON.stringify(payload))).setProtectedHeader({ alg: 'ES256', kid: 'hub-forged', typ }).sign(forged.privateKey);
  /** Relinks the chain from event `from` on; a redacted event keeps its hash (its content is not there to hash). */
  const rechain = (b: EvidenceBundle, from: number) => {
    for (let i = from; i < b.events.length; i++) {
      const e = b.events[i]!;
      e.prevHash = i === 0 ? null : b.events[i - 1]!.hash;
      if (!e.redacted) e.hash = eventHash({ messageId: b.messageId, seq: e.seq, type: e.type, at: new Date(e.at), data: e.data, prevHash: e.prevHash });
    }
  };
  const shown = (e: EvidenceBundle['events'][number]) => {
    if (e.redacted) throw new Error(`event ${e.seq} is redacted`);
    return e;
  };

  const tamperings: [string, ProblemCode, (b: EvidenceBundle) => Promise<void> | void][] = [
    ['changed data', 'event-hash', (b) => void (shown(b.events[1]!).data.providerOrgnr = '922020175')],
    ['changed time', 'event-hash', (b) => void (shown(b.events[1]!).at = new Date(Date.parse(shown(b.events[1]!).at) - 86_400_000).toISOString())],
    ['removed event', 'event-missing', (b) => void b.events.splice(2, 1)],
    ['reordered events', 'event-order', (b) => void b.events.splice(1, 2, b.events[2]!, b.events[1]!)],
    [
      'recomputed chain',
      'inclusion',
      (b) => {
        shown(b.events[1]!).data.providerOrgnr = '922020175';
        rechain(b, 1);
      },
    ],
    [
      'removed newest events',
      'statement',
      (b) => {
        b.events.splice(2);
        b.receipts = b.receipts.filter((r) => payloadOf(r.jws).event && (payloadOf(r.jws).event as { seq: number }).seq <= 2);
      },
    ],
    ['a receipt from another letter', 'receipt-message', (b) => void (b.receipts[0] = otherBundle.receipts[0]!)],
    [
      'a key never published',
      'key-unpublished',
      async (b) => {
        // Drop the newest events and sign a new statement with a key of one's own.
        b.events.splice(2);
        b.receipts = b.receipts.slice(0, 1);
        const st = payloadOf(b.statement);
        b.statement = await resign({ ...st, events: b.events.map(statementEvent), receipts: b.receipts.map((r) => r.id) }, 'postbud-evidence+jws');
        b.keys.keys.push(forgedJwk as never);
      },
    ],
  ];

  const detected = (of: EvidenceBundle) => async ([name, code, tamper]: (typeof tamperings)[number]) =>
    t.test(`${name}: both verifiers fail and name it (${code})`, async (t) => {
      const b = clone(of);
      await tamper(b);
      const ts = await verifyBundle(b, { jwks });
      t.equal(ts.valid, false, 'postbud verify fails');
      t.ok(ts.problems.some((p) => p.code === code), `postbud verify names ${code}: ${JSON.stringify(ts.problems)}`);
      if (!hasPython) return;
      const py = await python(dir, b, jwks);
      t.equal(py.code, 1, 'the Python verifier exits 1');
      t.ok(py.problems.some((p) => p.code === code), `the Python verifier names ${code}: ${JSON.stringify(py.problems)}`);
      t.same([...new Set(py.problems.map((p) => p.code))].sort(), [...new Set(ts.problems.map((p) => p.code))].sort(), 'both find the same kinds of problem');
    });
  for (const tampering of tamperings) await detected(bundle)(tampering);

  await t.test('without openReceipt, the OPENED event is redacted: in its place in the chain and the log, without type, time or data', async (t) => {
    t.same(
      redacted.events.map((e) => [e.seq, e.redacted, e.type]),
      [
        [1, false, 'SEALED'],
        [2, false, 'DELIVERED'],
        [3, false, 'NOTIFIED'],
        [4, true, null],
        [5, false, 'MOVED_OUT'],
      ],
    );
    const e4 = redacted.events[3]!;
    t.same({ at: e4.at, data: e4.data, hash: e4.hash, prevHash: e4.prevHash }, { at: null, data: null, hash: opened.hash, prevHash: redacted.events[2]!.hash }, 'its hash and prevHash, nothing else');
    t.equal(redacted.events[4]!.prevHash, opened.hash, 'the next event links to it');
    t.ok(e4.leafIndex !== null && Array.isArray(e4.inclusionProof), 'an inclusion proof for it too');
    t.same(redacted.receipts.map((r) => r.type), ['DELIVERED', 'NOTIFIED'], 'no OPENED receipt, though one exists');
    t.same((payloadOf(redacted.statement).events as unknown[])[3], { seq: 4, type: null, hash: opened.hash, redacted: true }, 'the statement lists it without its type');
    // Nowhere, not even inside the signed documents.
    const everything = [JSON.stringify(redacted), ...[redacted.statement, ...redacted.receipts.map((r) => r.jws)].map((j) => JSON.stringify(payloadOf(j)))].join('\n');
    t.notOk(everything.includes('OPENED'), 'no OPENED anywhere in the bundle');
    t.notOk(redacted.events.some((e) => e.at === openedAt.toISOString()), 'precondition: no other event has its time');
    t.notOk(everything.includes(openedAt.toISOString()), 'not the time it was opened');
    t.notOk(everything.includes('securityLevel'), 'not its data');

    t.match(await verifyBundle(redacted, { jwks }), { valid: true, problems: [], events: 5, receipts: 2, pending: [] }, 'postbud verify: valid');
    if (hasPython) t.match(await python(dir, redacted, jwks), { code: 0, valid: true, problems: [] }, 'the Python verifier: valid');
  });

  const closedEvents = await db.selectFrom('message_events').select(['seq', 'type', 'at', 'data']).where('message_id', '=', closed).orderBy('seq').execute();
  const openedRow = closedEvents.find((e) => e.type === 'OPENED')!;
  const redactedTamperings: typeof tamperings = [
    ['a redacted event with another hash', 'chain-link', (b) => void (b.events[3]!.hash = createHash('sha256').update('forged').digest('hex'))],
    [
      'a redacted event with another hash, the chain after it recomputed',
      'inclusion',
      (b) => {
        b.events[3]!.hash = createHash('sha256').update('forged').digest('hex');
        rechain(b, 4);
      },
    ],
    ['a redacted event removed', 'event-missing', (b) => void b.events.splice(3, 1)],
    [
      'a redacted event removed, the chain after it recomputed and renumbered',
      'statement',
      (b) => {
        b.events.splice(3, 1);
        b.events[3]!.seq = 4;
        rechain(b, 3);
      },
    ],
    [
      'a redacted event un-redacted with a guessed content',
      'event-hash',
      (b) => void (b.events[3] = { ...b.events[3]!, redacted: false, type: 'OPENED', at: openedAt.toISOString(), data: {} }),
    ],
    [
      // Its true content (read from the database) matches its hash: only the hub's list tells.
      'a redacted event un-redacted with its true content',
      'statement',
      (b) => void (b.events[3] = { ...b.events[3]!, redacted: false, type: openedRow.type, at: openedRow.at.toISOString(), data: openedRow.data }),
    ],
    ['a redacted event that shows its type', 'redaction', (b) => void Object.assign(b.events[3]!, { type: 'OPENED' })],
    ['a shown event redacted', 'statement', (b) => void (b.events[4] = { ...b.events[4]!, redacted: true, type: null, at: null, data: null })],
    ['a receipt for the redacted event', 'receipt-event', (b) => void b.receipts.push(opened.receipt!)],
  ];
  for (const tampering of redactedTamperings) await detected(redacted)(tampering);

  await t.test('without the published JWKS, a forged key is only caught by what it cannot re-sign', async (t) => {
    const b = clone(bundle);
    shown(b.events[3]!).data = { securityLevel: 3 };
    rechain(b, 3);
    const r = await verifyBundle(b);
    t.equal(r.valid, false);
    t.ok(r.problems.some((p) => p.code === 'receipt-event' && p.where.startsWith('receipt')), 'the OPENED receipt signed another event');
  });
});
