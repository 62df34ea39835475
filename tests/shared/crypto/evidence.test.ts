import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { sql } from 'kysely';
import { HubKeys, KEY_PUBLISH_LEAD_MS } from '../../../shared/crypto/hub-keys.js';
import { canonicalJson, checkChain, eventHash } from '../../../shared/evidence/chain.js';
import { appendEvent, appendEvents, loadEvents } from '../../../shared/evidence/events.js';
import { verifyReceipt, verifyReceiptInDb } from '../../../shared/evidence/verify.js';
import { storageContext } from '../../../shared/storage/context.js';
import { loadConfig } from '../../../shared/config/config.js';
import { verify } from '../../../scripts/commands/verify.js';
import { testDeps } from '../../helpers/service.js';

const SENDER = '974760673';

t.test('evidence log and receipts', async (t) => {
  const deps = await testDeps(t);
  const ctx = storageContext(deps);
  const db = deps.db.kysely;

  await t.test('concurrent appends to one message never fork the chain', async (t) => {
    const messageId = randomUUID();
    await Promise.all(Array.from({ length: 20 }, (_, i) => appendEvent(db, ctx.hub, { messageId, senderOrgnr: SENDER, type: 'NOTE', data: { i } })));
    const events = await loadEvents(db, messageId);
    t.same(events.map((e) => e.seq), Array.from({ length: 20 }, (_, i) => i + 1));
    t.same(checkChain(events), [], 'every link holds');
    t.equal(await db.selectFrom('receipts').select('id').where('message_id', '=', messageId).execute().then((r) => r.length), 0, 'internal events have no receipt');
  });

  await t.test('a batch appends to many messages at once, in order, and `once` adds a type only once', async (t) => {
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    await appendEvent(db, ctx.hub, { messageId: a, senderOrgnr: SENDER, type: 'NOTIFIED' });
    await appendEvent(db, ctx.hub, { messageId: b, senderOrgnr: SENDER, type: 'SEALED' });
    const notified = (messageId: string) => ({ messageId, senderOrgnr: SENDER, type: 'NOTIFIED', once: true });
    // Two concurrent batches racing to add NOTIFIED to the same letters: one of each survives.
    const [first, second] = await Promise.all([
      appendEvents(db, ctx.hub, [notified(a), notified(b), { messageId: b, senderOrgnr: SENDER, type: 'NOTE' }, notified(c), notified(c)]),
      appendEvents(db, ctx.hub, [notified(c), notified(b)]),
    ]);
    t.equal(first[0], undefined, 'a had NOTIFIED already');
    t.equal(first[4], undefined, 'the second NOTIFIED for c in one batch is dropped');
    t.ok(first[2], 'events without `once` are always added');
    for (const [id, count] of [[a, 1], [b, 3], [c, 1]] as const) {
      const events = await loadEvents(db, id);
      t.equal(events.length, count, `${count} events on one chain`);
      t.same(checkChain(events), [], 'every link holds');
      t.equal(events.filter((e) => e.type === 'NOTIFIED').length, 1, 'NOTIFIED once');
    }
    const added = [...first, ...second].filter((e) => e?.receipt);
    t.equal(added.length, 2, 'a receipt for each NOTIFIED added (b and c), none for NOTE');
    for (const e of added) t.match(await verifyReceiptInDb(db, e!.receipt!.jws), { valid: true, receipt: { type: 'NOTIFIED' } });
    t.same(await appendEvents(db, ctx.hub, []), [], 'an empty batch touches nothing');
  });

  await t.test('a receipt verifies, and tampering with the log or the receipt is detected', async (t) => {
    const messageId = randomUUID();
    await appendEvent(db, ctx.hub, { messageId, senderOrgnr: SENDER, type: 'SEALED' });
    const delivered = await appendEvent(db, ctx.hub, { messageId, senderOrgnr: SENDER, type: 'DELIVERED', data: { providerOrgnr: '984661185' } });
    t.ok(delivered.receipt);
    const jws = delivered.receipt!.jws;
    const ok = await verifyReceiptInDb(db, jws);
    t.match(ok, { valid: true, signature: true, chain: true, receipt: { type: 'DELIVERED', messageId, sender: SENDER, event: { seq: 2 } }, problems: [] });

    const config = loadConfig({ DATABASE_URL: deps.databaseUrl, DATA_DIR: deps.dataDir, LOG_LEVEL: 'silent' });
    let printed = '';
    t.equal(await verify(config, [jws], (s) => (printed += s)), 0, '`postbud verify <receipt>` accepts it');
    t.match(JSON.parse(printed), { valid: true, type: 'DELIVERED', messageId });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'receipt-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(path.join(dir, 'r.jws'), `${jws}\n`);
    t.equal(await verify(config, [path.join(dir, 'r.jws')], () => undefined), 0, 'also from a file');
    await t.rejects(verify(config, [], () => undefined), { message: /usage: postbud verify/ });
    await t.rejects(verify(loadConfig({ LOG_LEVEL: 'silent', DATA_DIR: deps.dataDir }), [jws], () => undefined), { message: /DATABASE_URL/ });

    const [h, p, s] = jws.split('.');
    const forged = Buffer.from(p!, 'base64url').toString().replace('"DELIVERED"', '"OPENED"');
    const bad = await verifyReceiptInDb(db, `${h}.${Buffer.from(forged).toString('base64url')}.${s}`);
    t.match(bad, { valid: false, signature: false });

    const edit = sql`update message_events set data = '{"providerOrgnr":"922020175"}' where message_id = ${messageId} and seq = 2`;
    await t.rejects(edit.execute(db), { message: /append-only/ }, 'the application cannot edit evidence');
    // A superuser can, by switching the triggers off: the verifier still catches it.
    await db.transaction().execute(async (trx) => {
      await sql`set local session_replication_role = replica`.execute(trx);
      await edit.execute(trx);
    });
    const tampered = await verifyReceiptInDb(db, jws);
    t.match(tampered, { valid: false, signature: true, chain: false });
    t.match(tampered.problems.join(), /hash does not match/);
    printed = '';
    t.equal(await verify(config, [jws], (x) => (printed += x)), 1, 'the CLI fails on a tampered log');
  });

  await t.test('rotation: new receipts use the new key, old ones still verify, the JWKS keeps both', async (t) => {
    const messageId = randomUUID();
    const before = await appendEvent(db, ctx.hub, { messageId, senderOrgnr: SENDER, type: 'OPENED' });
    const oldKid = (await ctx.hub.signingKey()).kid;
    const { kid: newKid, activatesAt } = await ctx.hub.rotate();
    t.not(newKid, oldKid);
    t.ok(activatesAt.getTime() - Date.now() >= KEY_PUBLISH_LEAD_MS - 5000, 'the new key signs only after a JWKS cache lifetime');
    const jwks = await ctx.hub.jwks();
    t.same(jwks.keys.map((k) => k.kid).slice(0, 2), [newKid, oldKid], 'published at once, newest first, the old one kept');
    const meanwhile = await appendEvent(db, ctx.hub, { messageId, senderOrgnr: SENDER, type: 'NOTIFIED', receipt: true });
    t.equal(JSON.parse(Buffer.from(meanwhile.receipt!.jws.split('.')[0]!, 'base64url').toString()).kid, oldKid, 'until then the old key goes on signing');
    // The same hub, once the new key is active (its clock moved on).
    const later = new HubKeys(db, ctx.keyring, () => activatesAt.getTime() + 1);
    const after = await appendEvent(db, later, { messageId, senderOrgnr: SENDER, type: 'NOTIFIED', receipt: true });
    const events = await loadEvents(db, messageId);
    const r1 = await verifyReceipt(before.receipt!.jws, { jwks: jwks as never, events });
    const r2 = await verifyReceipt(after.receipt!.jws, { jwks: jwks as never, events });
    t.equal(r1.kid, oldKid);
    t.equal(r2.kid, newKid);
    t.ok(r1.valid && r2.valid);
    const other = await HubKeys.prototype.signingKey.call(new HubKeys(db, ctx.keyring, () => activatesAt.getTime() + 60_000));
    t.equal(other.kid, newKid, 'another process picks up the rotated key once it is active');
    t.equal((await new HubKeys(db, ctx.keyring).signingKey()).kid, oldKid, 'but not before');
    const wrongLog = await verifyReceipt(after.receipt!.jws, { jwks: jwks as never, events: events.slice(0, 1) });
    t.match(wrongLog, { valid: false, signature: true });
    t.match(wrongLog.problems.join(), /no event 3/);
    const otherMessage = await verifyReceipt(after.receipt!.jws, { jwks: jwks as never, events: events.map((e) => ({ ...e, messageId: randomUUID() })) });
    t.match(otherMessage.problems.join(), /another message/);
    const typ = await ctx.hub.sign(Buffer.from('{}'), { typ: 'other' });
    t.match((await verifyReceipt(typ, { jwks: jwks as never, events: [] })).problems.join(), /typ is other/);
  });

  await t.test('processes starting at once create one hub key', async (t) => {
    const fresh = await testDeps(t);
    const ring = storageContext(fresh).keyring;
    const keys = await Promise.all(Array.from({ length: 4 }, () => new HubKeys(fresh.db.kysely, ring).signingKey()));
    t.equal(new Set(keys.map((k) => k.kid)).size, 1);
    t.equal((await new HubKeys(fresh.db.kysely, ring).jwks()).keys.length, 1);
  });
});

t.test('chain rules', async (t) => {
  t.equal(canonicalJson({ b: 1, a: [true, null, 'x'], c: undefined }), '{"a":[true,null,"x"],"b":1}');
  t.equal(canonicalJson({ a: 1, b: 2 }), canonicalJson({ b: 2, a: 1 }));
  t.equal(canonicalJson({ a: undefined, b: { d: [], c: {} } }), '{"b":{"c":{},"d":[]}}', 'a skipped first key leaves no comma');
  // RFC 8785: keys ordered by UTF-16 code units: Z (0x5A) < z (0x7A) < é (0xE9) < an emoji (surrogate 0xD83D).
  t.equal(canonicalJson({ '😀': 1, é: 2, z: 3, Z: 4 }), '{"Z":4,"z":3,"é":2,"😀":1}');
  t.equal(canonicalJson(['a"b', '\u2028', -0.5, 1e21]), JSON.stringify(['a"b', '\u2028', -0.5, 1e21]));
  t.throws(() => canonicalJson(NaN));
  t.throws(() => canonicalJson(() => 1));
  const e1 = { messageId: 'm', seq: 1, type: 'A', at: new Date(0), data: {}, prevHash: null };
  const h1 = eventHash(e1);
  const e2 = { ...e1, seq: 2, prevHash: h1 };
  const chain = [{ ...e1, hash: h1 }, { ...e2, hash: eventHash(e2) }];
  t.same(checkChain(chain), []);
  t.match(checkChain([chain[1]!]), [{ seq: 2, problem: /expected seq 1/ }, { seq: 2, problem: /prevHash/ }]);
});
