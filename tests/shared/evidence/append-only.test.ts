import { randomUUID } from 'node:crypto';
import { compactVerify, createLocalJWKSet, type JSONWebKeySet } from 'jose';
import { sql } from 'kysely';
import t from 'tap';
import { purgeEvidence, TOMBSTONE_TYP } from '../../../services/storage/retention.js';
import { ackReceipts } from '../../../services/ingestion/receipts.js';
import { appendEvent } from '../../../shared/evidence/events.js';
import { headOfSize, loadTree, sequenceAll } from '../../../shared/evidence/log.js';
import { verifyConsistency } from '../../../shared/evidence/merkle.js';
import { storageContext } from '../../../shared/storage/context.js';
import { testDeps } from '../../helpers/service.js';

const SENDER = '974760673';

t.test('evidence is append-only for the application; retention leaves a signed tombstone', async (t) => {
  const deps = await testDeps(t);
  const ctx = storageContext(deps);
  const db = deps.db.kysely;
  const letter = async () => {
    const messageId = randomUUID();
    await appendEvent(db, ctx.hub, { messageId, senderOrgnr: SENDER, type: 'SEALED', data: { documents: [] } });
    const d = await appendEvent(db, ctx.hub, { messageId, senderOrgnr: SENDER, type: 'DELIVERED', data: { providerOrgnr: '984661185' } });
    return { messageId, receiptId: d.receipt!.id };
  };
  const a = await letter();
  const b = await letter();
  const refused = { message: /append-only/ };

  await t.test('UPDATE and DELETE of events and receipts by the application fail', async (t) => {
    await t.rejects(sql`update message_events set data = '{}' where message_id = ${a.messageId}`.execute(db), refused);
    await t.rejects(sql`update message_events set at = now() where message_id = ${a.messageId} and seq = 2`.execute(db), refused);
    await t.rejects(sql`delete from message_events where message_id = ${a.messageId} and seq = 2`.execute(db), refused);
    await t.rejects(sql`update receipts set jws = 'x' where id = ${a.receiptId}`.execute(db), refused);
    await t.rejects(sql`delete from receipts where id = ${a.receiptId}`.execute(db), refused);
    await t.rejects(sql`truncate message_events`.execute(db), refused);
    await t.rejects(sql`truncate receipts cascade`.execute(db), refused);
    await t.rejects(sql`delete from hub_keys`.execute(db), { message: /stay published/ }, 'hub keys stay published');
    await t.rejects(sql`update hub_keys set public_jwk = '{}'`.execute(db), { message: /stay published/ });
    // Setting the retention flag alone is not enough: a signed tombstone must exist first.
    await t.rejects(
      db.transaction().execute(async (trx) => {
        await sql`set local postbud.evidence_retention = 'on'`.execute(trx);
        await sql`delete from message_events where message_id = ${a.messageId}`.execute(trx);
      }),
      refused,
    );
    t.equal((await db.selectFrom('message_events').select('seq').where('message_id', '=', a.messageId).execute()).length, 2, 'nothing changed');
  });

  await t.test('what the hub itself does still works: acknowledging receipts, giving leaves once, retiring keys', async (t) => {
    t.equal(await ackReceipts(db, SENDER, [a.receiptId]), 1);
    t.equal(await ackReceipts(db, SENDER, [a.receiptId]), 0, 'acknowledged once');
    await t.rejects(sql`update receipts set acked_at = now() where id = ${a.receiptId}`.execute(db), refused, 'acked_at is set once');
    const { head } = await sequenceAll(db, ctx.hub);
    t.equal(head!.treeSize, 4);
    await t.rejects(sql`update message_events set leaf_index = leaf_index + 100 where message_id = ${a.messageId}`.execute(db), refused, 'a leaf index is given once');
    const { kid } = await ctx.hub.rotate();
    t.ok(kid);
  });

  await t.test('retention deletes old evidence behind a signed tombstone; the log and its heads stay valid', async (t) => {
    const before = (await sequenceAll(db, ctx.hub)).head ?? (await headOfSize(db, 4))!;
    await db.transaction().execute(async (trx) => {
      await sql`set local session_replication_role = replica`.execute(trx);
      await sql`update message_events set at = at - interval '400 days' where message_id = ${b.messageId}`.execute(trx);
    });
    t.same(await purgeEvidence(ctx, { days: 365 }), { tombstones: 1 }, 'only the letter past retention');
    t.equal((await db.selectFrom('message_events').select('seq').where('message_id', '=', b.messageId).execute()).length, 0, 'its events are gone');
    t.equal((await db.selectFrom('receipts').select('id').where('message_id', '=', b.messageId).execute()).length, 0, 'its receipts too');
    t.equal((await db.selectFrom('message_events').select('seq').where('message_id', '=', a.messageId).execute()).length, 2, 'the other letter is untouched');
    const stone = await db.selectFrom('evidence_tombstones').selectAll().where('message_id', '=', b.messageId).executeTakeFirstOrThrow();
    const jwks = createLocalJWKSet((await ctx.hub.jwks()) as JSONWebKeySet);
    const { payload, protectedHeader } = await compactVerify(stone.jws, jwks);
    t.equal(protectedHeader.typ, TOMBSTONE_TYP);
    t.match(JSON.parse(Buffer.from(payload).toString()), {
      messageId: b.messageId,
      sender: SENDER,
      reason: 'RETENTION',
      events: [{ seq: 1, type: 'SEALED', leafIndex: Number }, { seq: 2, type: 'DELIVERED' }],
      receipts: [b.receiptId],
    });
    await t.rejects(sql`delete from evidence_tombstones`.execute(db), refused, 'tombstones are append-only too');
    const { tree, complete } = await loadTree(db, before.treeSize);
    t.ok(complete, 'the purged events keep their leaves');
    t.equal(tree.hash().toString('hex'), before.rootHash, 'the published head still matches the log');
    await appendEvent(db, ctx.hub, { messageId: a.messageId, senderOrgnr: SENDER, type: 'NOTIFIED' });
    const after = (await sequenceAll(db, ctx.hub)).head!;
    const grown = (await loadTree(db, after.treeSize)).tree;
    t.ok(verifyConsistency(before.treeSize, after.treeSize, Buffer.from(before.rootHash, 'hex'), Buffer.from(after.rootHash, 'hex'), grown.consistencyProof(before.treeSize, after.treeSize)), 'consistent across the purge');
    t.same(await purgeEvidence(ctx, { days: 365 }), { tombstones: 0 }, 'a second sweep finds nothing');
  });
});
