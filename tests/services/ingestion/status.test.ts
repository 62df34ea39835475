import t from 'tap';
import { compactVerify, createLocalJWKSet, type JSONWebKeySet } from 'jose';
import { service } from '../../../services/ingestion/app.js';
import { expireDelivery } from '../../../services/ingestion/expiry.js';
import { EFORMIDLING_STATUS, statusOfEvent } from '../../../services/ingestion/status.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { appendEvent } from '../../../shared/evidence/events.js';
import { verifyReceiptInDb } from '../../../shared/evidence/verify.js';
import { findMessage } from '../../../shared/messages/messages.js';
import { storageContext } from '../../../shared/storage/context.js';
import { testService } from '../../helpers/service.js';
import { DIGIPOST, letter, multipart, newKey, OTHER_SENDER, PDF, PERSONS, PRINT, PRINTER, seedRegistry, SENDER } from './fixtures.js';

t.test('status, timeline, lists, receipts, capabilities, expiry', async (t) => {
  const svc = await testService(t, service);
  const db = svc.deps.db.kysely;
  const storage = storageContext(svc.deps);
  await seedRegistry(db);
  const token = await svc.token({ org: SENDER, scope: SCOPES.send });
  const otherToken = await svc.token({ org: OTHER_SENDER, scope: SCOPES.send });
  const auth = (tok = token) => ({ authorization: `Bearer ${tok}` });

  const send = async (over: Record<string, unknown> = {}) => {
    const b = multipart(letter(over), [{ name: 'vedtak.pdf', content: PDF(1000) }]);
    const res = await svc.app.inject({ method: 'POST', url: '/v1/messages', headers: { ...auth(), 'content-type': b.contentType, 'idempotency-key': newKey() }, payload: b.payload });
    t.equal(res.statusCode, 201, res.body);
    return res.json() as { id: string };
  };
  const event = (messageId: string, type: string, data: Record<string, unknown> = {}) => appendEvent(db, storage.hub, { messageId, senderOrgnr: SENDER, type, data });
  const get = (url: string, tok = token) => svc.app.inject({ method: 'GET', url, headers: auth(tok) });

  await t.test('status follows the evidence log; the timeline lists every event; other senders see nothing', async (t) => {
    const { id } = await send({ senderReference: 'status-1' });
    let res = await get(`/v1/messages/${id}`);
    t.equal(res.statusCode, 200);
    t.match(res.json(), { id, status: 'ACCEPTED', eFormidlingStatus: 'SENDT', route: 'DIGITAL', provider: { orgnr: DIGIPOST, name: 'Digipost' }, senderReference: 'status-1' });
    await event(id, 'DELIVERED', { deliveryId: 'd', providerOrgnr: DIGIPOST });
    await event(id, 'NOTIFIED', { channel: 'email', address: 'ola@example.no' });
    t.equal((await get(`/v1/messages/${id}`)).json().status, 'NOTIFIED');
    await event(id, 'OPENED', { securityLevel: 4 });
    await event(id, 'NOTIFIED', { channel: 'sms' });
    res = await get(`/v1/messages/${id}`);
    const body = res.json();
    t.equal(body.status, 'OPENED', 'a late NOTIFIED does not hide OPENED');
    t.equal(body.eFormidlingStatus, 'LEST');
    t.same(body.timeline.map((e: { type: string }) => e.type), ['SEALED', 'DELIVERED', 'NOTIFIED', 'OPENED', 'NOTIFIED']);
    t.same(body.timeline.map((e: { seq: number }) => e.seq), [1, 2, 3, 4, 5]);
    t.ok(body.timeline.every((e: { at: string; hash: string }) => !Number.isNaN(Date.parse(e.at)) && /^[0-9a-f]{64}$/.test(e.hash)));
    t.notOk(JSON.stringify(body).includes('ola@example.no'), 'event data is filtered: no contact points');
    t.notOk(JSON.stringify(body).includes(PERSONS.digital), 'no personId');

    const other = await get(`/v1/messages/${id}`, otherToken);
    t.equal(other.statusCode, 404, "another sender's message is not found");
    t.equal(other.json().type, 'https://postbud.dev/problems/ingestion/message-not-found');
    t.equal((await get(`/v1/messages/${crypto.randomUUID()}`)).statusCode, 404);
    t.equal((await get('/v1/messages/not-a-uuid')).statusCode, 400);
    t.equal((await get(`/v1/messages/${id}`, await svc.token({ org: SENDER, scope: SCOPES.provider }))).statusCode, 403, 'needs the send scope');
    t.equal((await svc.app.inject({ method: 'GET', url: `/v1/messages/${id}` })).statusCode, 401);
  });

  await t.test('status mapping covers every outcome', async (t) => {
    t.equal(statusOfEvent('PRINT_ACCEPTED', {}), 'PRINT_ACCEPTED');
    t.equal(statusOfEvent('PRINTED', {}), 'PRINT_ACCEPTED');
    t.equal(statusOfEvent('RETURNED', {}), 'FAILED');
    t.equal(statusOfEvent('FAILED', {}), 'FAILED');
    t.equal(statusOfEvent('ERROR', { reason: 'EXPIRED' }), 'EXPIRED');
    t.equal(statusOfEvent('ERROR', {}), 'FAILED');
    t.equal(statusOfEvent('PURGED', {}), undefined);
    t.equal(statusOfEvent('CANCELLED', {}), 'CANCELLED');
    t.same(Object.keys(EFORMIDLING_STATUS).sort(), ['ACCEPTED', 'CANCELLED', 'DELIVERED', 'EXPIRED', 'FAILED', 'NOTIFIED', 'OPENED', 'PRINT_ACCEPTED']);
    const { id } = await send();
    await event(id, 'FAILED', { reason: 'mailbox closed' });
    t.match((await get(`/v1/messages/${id}`)).json(), { status: 'FAILED', eFormidlingStatus: 'FEIL' });
  });

  await t.test('the list pages with a cursor and filters by status and since; only own letters', async (t) => {
    const before = new Date();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await send()).id);
    await event(ids[1]!, 'DELIVERED');
    await event(ids[3]!, 'DELIVERED');
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await get(`/v1/messages?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      t.equal(res.statusCode, 200);
      const page = res.json() as { items: { id: string }[]; nextCursor: string | null };
      seen.push(...page.items.map((i) => i.id));
      cursor = page.nextCursor;
      pages++;
    } while (cursor && pages < 20);
    t.same(seen.slice(-5), ids, 'oldest first, each once');
    t.equal(new Set(seen).size, seen.length);
    const delivered = (await get(`/v1/messages?status=DELIVERED&since=${before.toISOString()}`)).json();
    t.same(delivered.items.map((i: { id: string }) => i.id), [ids[1], ids[3]]);
    const since = (await get(`/v1/messages?since=${new Date(Date.now() + 60_000).toISOString()}`)).json();
    t.same(since.items, []);
    t.same((await get('/v1/messages', otherToken)).json().items, [], 'another sender sees none of them');
    t.equal((await get('/v1/messages?cursor=garbage')).statusCode, 400);
    t.equal((await get('/v1/messages?status=LOST')).statusCode, 400);
    t.equal((await get('/v1/messages?limit=1000')).statusCode, 400);
  });

  await t.test('receipts: pulled oldest first until acknowledged, verifiable, per sender, ack idempotent', async (t) => {
    const { id } = await send();
    await event(id, 'DELIVERED');
    await event(id, 'OPENED');
    const pull = await get('/v1/receipts?limit=100');
    t.equal(pull.statusCode, 200);
    const mine = (pull.json().receipts as { id: string; type: string; messageId: string; jws: string; receipt: { type: string } }[]).filter((r) => r.messageId === id);
    t.same(mine.map((r) => r.type), ['DELIVERED', 'OPENED']);
    const jwks = (await storage.hub.jwks()) as JSONWebKeySet;
    for (const r of mine) {
      const { payload } = await compactVerify(r.jws, createLocalJWKSet(jwks));
      t.same(JSON.parse(Buffer.from(payload).toString()), r.receipt, 'decoded = signed payload');
      t.ok((await verifyReceiptInDb(db, r.jws)).valid, 'signature and chain verify');
    }
    const again = await get('/v1/receipts');
    t.ok(again.json().receipts.some((r: { id: string }) => r.id === mine[0]!.id), 'pulling does not remove them');
    t.same((await get('/v1/receipts', otherToken)).json().receipts, [], "another sender gets none of mine");
    const otherAck = await svc.app.inject({ method: 'POST', url: '/v1/receipts/ack', headers: auth(otherToken), payload: { ids: mine.map((r) => r.id) } });
    t.same(otherAck.json(), { acknowledged: 0 }, "another sender cannot acknowledge mine");
    const ack = await svc.app.inject({ method: 'POST', url: '/v1/receipts/ack', headers: auth(), payload: { ids: mine.map((r) => r.id) } });
    t.same(ack.json(), { acknowledged: 2 });
    const ackAgain = await svc.app.inject({ method: 'POST', url: '/v1/receipts/ack', headers: auth(), payload: { ids: mine.map((r) => r.id) } });
    t.same(ackAgain.json(), { acknowledged: 0 }, 'idempotent');
    t.notOk((await get('/v1/receipts')).json().receipts.some((r: { messageId: string }) => r.messageId === id));
    const bad = await svc.app.inject({ method: 'POST', url: '/v1/receipts/ack', headers: auth(), payload: { ids: ['x'] } });
    t.equal(bad.statusCode, 400);
    const extra = await svc.app.inject({ method: 'POST', url: '/v1/receipts/ack', headers: auth(), payload: { ids: [id], all: true } });
    t.equal(extra.statusCode, 400);
    t.equal((await get('/v1/receipts?limit=101')).statusCode, 400);
    t.equal((await get('/v1/receipts', await svc.token({ org: SENDER, scope: SCOPES.lookup }))).statusCode, 403);
  });

  await t.test('capabilities: digital, print, reserved, unknown; no contact data', async (t) => {
    const digital = await get(`/v1/capabilities/${PERSONS.digital}`);
    t.equal(digital.statusCode, 200);
    t.same(digital.json(), {
      status: 'ACTIVE',
      reserved: false,
      canNotify: true,
      reason: null,
      canNotifyReason: null,
      digital: { possible: true, reason: null, provider: null, mailboxAddress: null, securityLevels: [3, 4] },
      print: { possible: true, reason: null, provider: { orgnr: PRINTER, name: 'Test Print' } },
    });
    const withScope = await get(`/v1/capabilities/${PERSONS.digital}`, await svc.token({ org: SENDER, scope: `${SCOPES.send} ${SCOPES.lookupDigitalPost}` }));
    t.match(withScope.json(), { digital: { possible: true, provider: { orgnr: DIGIPOST, name: 'Digipost' }, mailboxAddress: 'ola.nordmann#1' } }, 'the mailbox only with the digital-post scope');
    t.notOk(digital.body.includes('ola@example.no'));
    t.match((await get(`/v1/capabilities/${PERSONS.reserved}`)).json(), { reserved: true, reason: 'RESERVED', digital: { possible: false, reason: 'RESERVED', provider: null }, print: { possible: true } });
    t.match((await get(`/v1/capabilities/${PERSONS.notRegistered}`)).json(), { status: 'NOT_REGISTERED', digital: { possible: false }, print: { possible: false } });
    t.match((await get(`/v1/capabilities/${PERSONS.deleted}`)).json(), { status: 'DELETED', print: { possible: false } });
    t.equal((await get('/v1/capabilities/12345678901')).statusCode, 400);
    t.equal((await get(`/v1/capabilities/${PERSONS.digital}`, await svc.token({ org: SENDER, scope: SCOPES.lookup }))).statusCode, 403);
  });

  await t.test('expiry: unacknowledged -> EXPIRED with an ERROR receipt; with a print fallback -> print; acknowledged -> nothing', async (t) => {
    const plain = await send();
    const d1 = await db.selectFrom('deliveries').select('id').where('message_id', '=', plain.id).executeTakeFirstOrThrow();
    t.equal(await expireDelivery(svc.deps.db, storage, { messageId: plain.id, deliveryId: d1.id }, 60), 'expired');
    t.equal(await expireDelivery(svc.deps.db, storage, { messageId: plain.id, deliveryId: d1.id }, 60), 'acknowledged', 'twice changes nothing');
    const s = (await get(`/v1/messages/${plain.id}`)).json();
    t.match(s, { status: 'EXPIRED', eFormidlingStatus: 'LEVETID_UTLOPT' });
    t.equal((await db.selectFrom('deliveries').select('state').where('id', '=', d1.id).executeTakeFirstOrThrow()).state, 'FAILED', 'withdrawn from the provider');
    const receipts = (await get('/v1/receipts')).json().receipts.filter((r: { messageId: string }) => r.messageId === plain.id);
    t.match(receipts, [{ type: 'ERROR', receipt: { data: { reason: 'EXPIRED', errorType: 'SERVER' } } }]);

    const withPrint = await send({ print: PRINT });
    const d2 = await db.selectFrom('deliveries').select('id').where('message_id', '=', withPrint.id).executeTakeFirstOrThrow();
    t.equal(await expireDelivery(svc.deps.db, storage, { messageId: withPrint.id, deliveryId: d2.id }, 60), 'print');
    const all = await db.selectFrom('deliveries').selectAll().where('message_id', '=', withPrint.id).orderBy('created_at').execute();
    t.equal(all.length, 2);
    t.match(all[1], { route: 'PRINT', provider_orgnr: PRINTER, state: 'READY', package_id: all[0]!.package_id });
    t.match((await get(`/v1/messages/${withPrint.id}`)).json(), { status: 'ACCEPTED', route: 'PRINT', provider: { orgnr: PRINTER } });
    t.match(await findMessage(db, withPrint.id), { route: 'PRINT', providerOrgnr: PRINTER });

    const acked = await send();
    const d3 = await db.selectFrom('deliveries').select('id').where('message_id', '=', acked.id).executeTakeFirstOrThrow();
    await db.updateTable('deliveries').set({ state: 'DELIVERED', acked_at: new Date() }).where('id', '=', d3.id).execute();
    t.equal(await expireDelivery(svc.deps.db, storage, { messageId: acked.id, deliveryId: d3.id }, 60), 'acknowledged');
  });

  await t.test('findMessage gives what the alerts need', async (t) => {
    const { id } = await send({ availableAt: '2030-01-01T08:00:00.000Z' });
    const m = await findMessage(db, id);
    t.match(m, { id, senderOrgnr: SENDER, personId: PERSONS.digital, title: 'Vedtak om tilskudd', language: 'nb', securityLevel: 4, openReceipt: true, route: 'DIGITAL', providerOrgnr: DIGIPOST });
    t.equal(m?.availableAt.toISOString(), '2030-01-01T08:00:00.000Z');
    t.same(m?.notifications, { email: { text: 'Du har fått post' }, sms: { text: 'Du har fått post' }, repeatAfterDays: [7] });
    t.equal(await findMessage(db, crypto.randomUUID()), undefined);
    t.equal(await findMessage(db, 'nope'), undefined);
  });
});
