import t from 'tap';
import { sql } from 'kysely';
import { service } from '../../../services/storage/app.js';
import { failOverdueMoves } from '../../../services/storage/moves.js';
import { notificationContext } from '../../../services/notification/context.js';
import { planMoveNotice } from '../../../services/notification/notices.js';
import { moveNoticeText } from '../../../services/notification/texts.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { checkChain } from '../../../shared/evidence/chain.js';
import { loadEvents } from '../../../shared/evidence/events.js';
import { syntheticPersonIdList } from '../../../shared/ids/person-id.js';
import { storageContext } from '../../../shared/storage/context.js';
import { decryptPackage } from '../../../shared/storage/packages.js';
import { testService } from '../../helpers/service.js';
import { collect, DIGIPOST, EBOKS, insertProvider, opensslDecrypt, providerCert, seedDelivery } from '../storage/fixtures.js';
import { opensslSealFor } from './move-helpers.js';

const P = 'https://postbud.dev/problems/';
const digipost = providerCert('Digipost');
const eboks = providerCert('e-Boks');
const [ola, kari, per, lise] = syntheticPersonIdList(4, 77) as [string, string, string, string];

t.test('moving delivered mail: request, provider export, MOVED deliveries, progress, deadline, who may do what', async (t) => {
  const ts = await testService(t, service, { env: { MOVE_TIMEOUT_SECONDS: '3600' } });
  const db = ts.deps.db.kysely;
  const ctx = storageContext(ts.deps);
  await insertProvider(db, { orgnr: DIGIPOST, certDer: digipost.certDer });
  await insertProvider(db, { orgnr: EBOKS, certDer: eboks.certDer });
  for (const p of [ola, kari, per, lise]) await sql`insert into persons (person_id, status, reserved, language) values (${p}, 'ACTIVE', false, 'nb')`.execute(db);
  // Ola, Kari and Per have switched to e-Boks; Lise never had another provider.
  await sql`insert into mailboxes (person_id, provider_orgnr, address, active) values
    (${ola}, ${DIGIPOST}, 'ola#dp', false), (${ola}, ${EBOKS}, 'ola-eb', true),
    (${kari}, ${DIGIPOST}, 'kari#dp', false), (${kari}, ${EBOKS}, 'kari-eb', true),
    (${lise}, ${EBOKS}, 'lise-eb', true)`.execute(db);

  const auth = async (org: string, scope: string = SCOPES.provider) => ({ authorization: `Bearer ${await ts.token({ org, scope } as never)}` });
  const citizen = async (pid: string, acr = 'idporten-loa-substantial') => ({ authorization: `Bearer ${await ts.token({ pid, acr } as never)}` });
  const asDigipost = await auth(DIGIPOST);
  const asEboks = await auth(EBOKS);

  // Three letters delivered to Ola at Digipost (one opened), one to Kari, one still READY for Ola.
  const delivered: (Awaited<ReturnType<typeof seedDelivery>> & { zip: Buffer })[] = [];
  for (let i = 0; i < 3; i++) {
    const s = await seedDelivery(ts.deps, { providerOrgnr: DIGIPOST, mailboxAddress: 'ola#dp', personId: ola });
    const cms = (await ts.app.inject({ method: 'GET', url: `/v1/deliveries/${s.id}/package`, headers: asDigipost })).rawPayload;
    t.equal((await ts.app.inject({ method: 'POST', url: `/v1/deliveries/${s.id}/ack`, headers: asDigipost })).statusCode, 200);
    delivered.push({ ...s, zip: await opensslDecrypt(t, cms, digipost) });
  }
  const openedAt = new Date().toISOString(); // after the delivery was offered, not in the future (storage's event rules)
  t.equal((await ts.app.inject({ method: 'POST', url: `/v1/deliveries/${delivered[1]!.id}/events`, headers: { ...asDigipost, 'content-type': 'application/json' }, payload: { type: 'OPENED', at: openedAt, securityLevel: 4 } })).statusCode, 200);
  const karis = await seedDelivery(ts.deps, { providerOrgnr: DIGIPOST, mailboxAddress: 'kari#dp', personId: kari });
  await ts.app.inject({ method: 'POST', url: `/v1/deliveries/${karis.id}/ack`, headers: asDigipost });
  await seedDelivery(ts.deps, { providerOrgnr: DIGIPOST, mailboxAddress: 'ola#dp', personId: ola }); // READY: re-addressing's business, not a move's
  const notificationJobs = async () => Number((await sql<{ n: string }>`select count(*) as n from outbox where queue = 'notification' and job_name = 'delivery-event'`.execute(db)).rows[0]!.n);
  const notices = () => db.selectFrom('outbox').select('payload').where('queue', '=', 'notification').where('job_name', '=', 'citizen-notice').execute();
  const notification = notificationContext(ts.deps);
  const jobsBefore = await notificationJobs();

  let moveId = '';
  await t.test('asking: acr, no previous provider, no mailbox, only once at a time', async (t) => {
    const low = await ts.app.inject({ method: 'POST', url: '/v1/me/moves', headers: await citizen(ola, 'idporten-loa-low'), payload: {} });
    t.equal(low.statusCode, 403);
    t.equal(low.json().type, `${P}insufficient-security-level`);
    const machine = await ts.app.inject({ method: 'POST', url: '/v1/me/moves', headers: asEboks, payload: {} });
    t.equal(machine.statusCode, 403, 'a provider cannot ask on a citizen\'s behalf');
    const none = await ts.app.inject({ method: 'POST', url: '/v1/me/moves', headers: await citizen(lise), payload: {} });
    t.equal(none.statusCode, 409);
    t.equal(none.json().type, `${P}storage/no-previous-provider`);
    const noMailbox = await ts.app.inject({ method: 'POST', url: '/v1/me/moves', headers: await citizen(per), payload: {} });
    t.equal(noMailbox.json().type, `${P}storage/no-active-mailbox`);
    t.equal((await ts.app.inject({ method: 'POST', url: '/v1/me/moves', headers: await citizen(ola), payload: { to: EBOKS } })).statusCode, 400, 'no fields to set');

    // Two requests at once: exactly one move.
    const headers = await citizen(ola);
    const both = await Promise.all([0, 1].map(() => ts.app.inject({ method: 'POST', url: '/v1/me/moves', headers, payload: {} })));
    t.same(both.map((r) => r.statusCode).sort(), [201, 409], 'one wins');
    const loser = both.find((r) => r.statusCode === 409)!;
    t.equal(loser.json().type, `${P}storage/move-in-progress`);
    const move = both.find((r) => r.statusCode === 201)!.json();
    t.match(move, { state: 'IN_PROGRESS', toProviderOrgnr: EBOKS, fromProviderOrgnrs: [DIGIPOST], letters: 3, pending: 3, moved: 0, notice: null });
    moveId = move.id;
    const again = await ts.app.inject({ method: 'POST', url: '/v1/me/moves', headers, payload: {} });
    t.equal(again.json().type, `${P}storage/move-in-progress`);
    t.equal((await ts.app.inject({ method: 'GET', url: `/v1/me/moves/${moveId}`, headers: await citizen(kari) })).statusCode, 404, "another citizen's move is not found");
  });

  await t.test('the old provider exports; the hub checks and offers MOVED deliveries to the new one', async (t) => {
    const feed = await ts.app.inject({ method: 'GET', url: '/v1/moves/exports', headers: asDigipost });
    t.equal(feed.statusCode, 200);
    const { transportCertificate, exports } = feed.json() as { transportCertificate: { pem: string }; exports: { id: string; deliveryId: string; messageId: string; personId: string }[] };
    t.same(exports.map((e) => e.deliveryId).sort(), delivered.map((d) => d.id).sort(), 'one export request per delivered letter');
    t.ok(exports.every((e) => e.personId === ola));
    t.same((await ts.app.inject({ method: 'GET', url: '/v1/moves/exports', headers: asEboks })).json().exports, [], 'only the holder is asked');
    const item = (i: number) => exports.find((e) => e.deliveryId === delivered[i]!.id)!;
    const put = (id: string, body: Buffer, headers = asDigipost) =>
      ts.app.inject({ method: 'PUT', url: `/v1/moves/exports/${id}/package`, headers: { ...headers, 'content-type': 'application/pkcs7-mime' }, payload: body });

    // Not the original letter, not for the hub, not CMS, not the holder: refused, nothing changes.
    let res = await put(item(0).id, await opensslSealFor(t, delivered[2]!.zip, transportCertificate.pem));
    t.equal(res.statusCode, 422, res.body);
    t.equal(res.json().type, `${P}storage/export-invalid`);
    res = await put(item(0).id, await opensslSealFor(t, delivered[0]!.zip, eboks.certPem));
    t.equal(res.json().type, `${P}storage/export-invalid`, 'sealed for someone else');
    const tampered = Buffer.from(delivered[0]!.zip);
    tampered[tampered.length >> 1]! ^= 0xff;
    res = await put(item(0).id, await opensslSealFor(t, tampered, transportCertificate.pem));
    t.equal(res.statusCode, 422, 'a changed byte is caught');
    res = await put(item(0).id, Buffer.from('not cms'));
    t.equal(res.statusCode, 422);
    res = await put(item(0).id, await opensslSealFor(t, delivered[0]!.zip, transportCertificate.pem), asEboks);
    t.equal(res.statusCode, 404, "another provider's export request is not found");
    t.equal((await put('not-a-uuid', Buffer.from('x'))).statusCode, 400);
    const asJson = await ts.app.inject({ method: 'PUT', url: `/v1/moves/exports/${item(0).id}/package`, headers: { ...asDigipost, 'content-type': 'application/json' }, payload: { cms: 'x' } });
    t.equal(asJson.statusCode, 415, 'not CMS bytes');
    t.equal((await put(item(0).id, Buffer.from('x'), await auth(DIGIPOST, SCOPES.send))).statusCode, 403);

    for (const i of [0, 1]) {
      res = await put(item(i).id, await opensslSealFor(t, delivered[i]!.zip, transportCertificate.pem));
      t.equal(res.statusCode, 200, res.body);
      t.equal(res.json().state, 'MOVED');
    }
    const replay = await put(item(0).id, await opensslSealFor(t, delivered[0]!.zip, transportCertificate.pem));
    t.equal(replay.statusCode, 200, 'sending again answers the same');
    const missing = await ts.app.inject({ method: 'POST', url: `/v1/moves/exports/${item(2).id}/missing`, headers: asDigipost, payload: { reason: 'DELETED_BY_CITIZEN' } });
    t.equal(missing.json().state, 'MISSING');
    t.equal((await put(item(2).id, await opensslSealFor(t, delivered[2]!.zip, transportCertificate.pem))).statusCode, 409, 'answered already');

    const move = (await ts.app.inject({ method: 'GET', url: `/v1/me/moves/${moveId}`, headers: await citizen(ola, 'idporten-loa-low') })).json();
    t.match(move, { state: 'COMPLETED', letters: 3, moved: 2, missing: 1, failed: 0, pending: 0 });
    t.match(move.notice, /2 letters were moved.*1 were no longer/);
    // The citizen is told by e-mail: storage asks notification (a trigger, no personId), which plans one NOTICE.
    t.same((await notices()).map((n) => n.payload), [{ moveId }]);
    t.equal(await planMoveNotice(notification, { moveId }), 1);
    t.equal(await planMoveNotice(notification, { moveId }), 0, 'once per move');
    const attempt = await db.selectFrom('notification_attempts').selectAll().where('kind', '=', 'NOTICE').executeTakeFirstOrThrow();
    t.match(attempt, { person_id: ola, channel: 'email', message_id: null, notice: { state: 'COMPLETED', letters: 3, moved: 2, missing: 1 } });
    t.match(moveNoticeText('nb', attempt.notice as never).body, /2 av 3 brev er flyttet\. 1 brev fantes ikke lenger/);

    const list = (await ts.app.inject({ method: 'GET', url: '/v1/deliveries', headers: asEboks })).json() as { deliveries: { id: string; messageId: string; kind: string; original?: { deliveredAt: string; openedAt: string | null; senderOrgnr: string }; mailboxAddress: string }[] };
    t.equal(list.deliveries.length, 2, 'two MOVED deliveries for e-Boks');
    for (const i of [0, 1]) {
      const d = list.deliveries.find((x) => x.messageId === delivered[i]!.messageId)!;
      t.match(d, { kind: 'MOVED', mailboxAddress: 'ola-eb', original: { senderOrgnr: delivered[i]!.sealed.manifest.sender.orgnr } });
      t.ok(d.original!.deliveredAt, 'the original delivery time');
      t.equal(d.original!.openedAt, i === 1 ? openedAt : null, 'the opened time where known');
      const cms = (await ts.app.inject({ method: 'GET', url: `/v1/deliveries/${d.id}/package`, headers: asEboks })).rawPayload;
      t.ok((await opensslDecrypt(t, cms, eboks)).equals(delivered[i]!.zip), 'decrypts with e-Boks\'s key to the very package the sender sealed');
      t.ok((await collect(decryptPackage(ctx, (await db.selectFrom('deliveries').select('package_id').where('id', '=', d.id).executeTakeFirstOrThrow()).package_id))).equals(delivered[i]!.zip));
      t.equal((await ts.app.inject({ method: 'POST', url: `/v1/deliveries/${d.id}/ack`, headers: asEboks })).statusCode, 200);
    }
    const states = await db.selectFrom('deliveries').select(['id', 'state']).where('id', 'in', delivered.map((d) => d.id)).execute();
    t.same(Object.fromEntries(states.map((s) => [s.id, s.state])), { [delivered[0]!.id]: 'MOVED', [delivered[1]!.id]: 'MOVED', [delivered[2]!.id]: 'DELIVERED' }, "Digipost's deliveries are marked moved; the deleted one is not");
    for (const i of [0, 1]) {
      const events = await loadEvents(db, delivered[i]!.messageId);
      t.same(events.map((e) => e.type), i === 1 ? ['SEALED', 'DELIVERED', 'OPENED', 'MOVED_OUT', 'MOVED_IN'] : ['SEALED', 'DELIVERED', 'MOVED_OUT', 'MOVED_IN']);
      t.same(checkChain(events), [], 'the chain verifies');
      t.match(events.find((e) => e.type === 'MOVED_OUT')!.data, { moveId, fromProviderOrgnr: DIGIPOST, toProviderOrgnr: EBOKS });
    }
    const receipts = await db.selectFrom('receipts').select('type').where('message_id', 'in', [delivered[0]!.messageId, delivered[1]!.messageId]).execute();
    // The seeded letters asked for no open receipt, so the earlier OPENED gave none either.
    t.same(receipts.map((r) => r.type).sort(), ['DELIVERED', 'DELIVERED'], 'no new receipt for the sender');
    t.equal(await notificationJobs(), jobsBefore, 'no alert is asked for');
    // Reopening at the new provider does not repeat OPENED for a letter already opened.
    const d1 = list.deliveries.find((x) => x.messageId === delivered[1]!.messageId)!;
    await ts.app.inject({ method: 'POST', url: `/v1/deliveries/${d1.id}/events`, headers: { ...asEboks, 'content-type': 'application/json' }, payload: { type: 'OPENED', at: new Date().toISOString(), securityLevel: 4 } });
    t.equal((await loadEvents(db, delivered[1]!.messageId)).filter((e) => e.type === 'OPENED').length, 1);
    t.equal(await notificationJobs(), jobsBefore);
  });

  await t.test('an old provider that never answers: the move ends FAILED at its deadline, the citizen is told', async (t) => {
    const res = await ts.app.inject({ method: 'POST', url: '/v1/me/moves', headers: await citizen(kari), payload: {} });
    t.equal(res.statusCode, 201);
    const id = res.json().id as string;
    t.equal(await failOverdueMoves(ctx, new Date(Date.now() + 1000 * 1000)), 0, 'not before the deadline');
    t.equal(await failOverdueMoves(ctx, new Date(Date.now() + 3601 * 1000)), 1);
    const move = (await ts.app.inject({ method: 'GET', url: `/v1/me/moves/${id}`, headers: await citizen(kari) })).json();
    t.match(move, { state: 'FAILED', failureReason: 'NO_ANSWER_FROM_PROVIDER', failed: 1, moved: 0, items: [{ state: 'FAILED', reason: 'NO_ANSWER_FROM_PROVIDER' }] });
    t.match(move.notice, /failed/);
    t.equal((await notices()).length, 2, 'the citizen is told this time too');
    t.equal(await planMoveNotice(notification, { moveId: id }), 1);
    const told = await db.selectFrom('notification_attempts').select('notice').where('notice_key', '=', `move:${id}`).executeTakeFirstOrThrow();
    t.match(moveNoticeText('en', told.notice as never).body, /did not complete: 0 of 1 letters were moved, 1 were not handed over/);
    const feed = (await ts.app.inject({ method: 'GET', url: '/v1/moves/exports', headers: asDigipost })).json();
    t.same(feed.exports, [], 'no longer asked');
    const late = await ts.app.inject({ method: 'POST', url: `/v1/moves/exports/${move.items[0].id}/missing`, headers: asDigipost, payload: { reason: 'NOT_FOUND' } });
    t.equal(late.statusCode, 409);
    t.equal(late.json().type, `${P}storage/export-closed`);
    t.equal((await db.selectFrom('deliveries').select('state').where('id', '=', karis.id).executeTakeFirstOrThrow()).state, 'DELIVERED', 'the letter stays where it was');
    // Operators see it, without personIds.
    const admin = await ts.app.inject({ method: 'GET', url: '/v1/admin/moves?state=FAILED', headers: await auth('889640782', SCOPES.admin) });
    t.equal(admin.statusCode, 200);
    t.match(admin.json().moves, [{ id, state: 'FAILED', letters: 1, failed: 1 }]);
    t.notOk(admin.body.includes(kari), 'no personId for operators');
    t.equal((await ts.app.inject({ method: 'GET', url: '/v1/admin/moves', headers: asDigipost })).statusCode, 403, 'operators only');
    // After a failed move, the citizen may ask again.
    t.equal((await ts.app.inject({ method: 'POST', url: '/v1/me/moves', headers: await citizen(kari), payload: {} })).statusCode, 201);
  });
});
