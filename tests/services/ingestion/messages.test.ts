import t from 'tap';
import { service } from '../../../services/ingestion/app.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { decryptPackage } from '../../../shared/storage/packages.js';
import { storageContext } from '../../../shared/storage/context.js';
import { testService } from '../../helpers/service.js';
import { consumer, forgeToken, signWithDevKey } from '../../helpers/tokens.js';
import { DEV_ISSUER } from '../../../shared/auth/dev-issuer.js';
import { DIGIPOST, letter, multipart, newKey, OTHER_SENDER, PDF, PERSONS, PRINT, PRINTER, seedRegistry, SENDER, SUSPENDED_SENDER, UNKNOWN_ORG } from './fixtures.js';

t.test('intake', async (t) => {
  const svc = await testService(t, service);
  const db = svc.deps.db.kysely;
  await seedRegistry(db);
  const token = await svc.token({ org: SENDER, scope: SCOPES.send });
  const otherToken = await svc.token({ org: OTHER_SENDER, scope: SCOPES.send });

  const send = async (message: unknown, files = [{ name: 'vedtak.pdf', content: PDF() }], opts: { key?: string | null; auth?: string } = {}) => {
    const body = multipart(message, files);
    const key = opts.key === undefined ? newKey() : opts.key;
    return svc.app.inject({
      method: 'POST',
      url: '/v1/messages',
      headers: { authorization: `Bearer ${opts.auth ?? token}`, 'content-type': body.contentType, ...(key === null ? {} : { 'idempotency-key': key }) },
      payload: body.payload,
    });
  };

  await t.test('a letter to a person with a mailbox goes DIGITAL and is sealed, stored and evidenced in one go', async (t) => {
    const doc = PDF(50_000);
    const res = await send(letter({ senderReference: 'ref-1', documents: [{ name: 'vedtak.pdf', mime: 'application/pdf', main: true }, { name: 'vedlegg.txt', mime: 'text/plain' }] }), [
      { name: 'vedtak.pdf', content: doc },
      { name: 'vedlegg.txt', content: Buffer.from('Hei og hå\n') },
    ]);
    t.equal(res.statusCode, 201, res.body);
    const body = res.json();
    t.match(body, { route: 'DIGITAL', provider: { orgnr: DIGIPOST, name: 'Digipost' }, status: 'ACCEPTED', senderReference: 'ref-1', links: { self: `/v1/messages/${body.id}` } });
    t.equal(res.headers.location, `/v1/messages/${body.id}`);

    const msg = await db.selectFrom('messages').selectAll().where('id', '=', body.id).executeTakeFirstOrThrow();
    t.match(msg, { sender_orgnr: SENDER, person_id: PERSONS.digital, route: 'DIGITAL', provider_orgnr: DIGIPOST, security_level: 4, open_receipt: true });
    t.same(msg.notifications, { email: { text: 'Du har fått post' }, sms: { text: 'Du har fått post' }, repeatAfterDays: [7] });
    t.equal(msg.documents.length, 2);
    const deliveries = await db.selectFrom('deliveries').selectAll().where('message_id', '=', body.id).execute();
    t.equal(deliveries.length, 1);
    t.match(deliveries[0], { state: 'READY', route: 'DIGITAL', mailbox_address: 'ola.nordmann#1', package_id: msg.package_id });
    const events = await db.selectFrom('message_events').select(['seq', 'type']).where('message_id', '=', body.id).execute();
    t.same(events, [{ seq: 1, type: 'SEALED' }]);
    t.equal(deliveries[0]!.expires_at?.getTime(), deliveries[0]!.created_at.getTime() + svc.config.DELIVERY_EXPIRY_SECONDS * 1000, 'expires with DELIVERY_EXPIRY_SECONDS (the sweep takes it)');
    const outbox = await db.selectFrom('outbox').selectAll().execute();
    t.notOk(outbox.some((o) => JSON.stringify(o.payload).includes(body.id)), 'no expiry job in the outbox');

    // No plaintext at rest: the stored chunks do not contain the document, but the package decrypts to a ZIP holding it.
    const chunks = await db.selectFrom('package_chunks').select('data').where('package_id', '=', msg.package_id).execute();
    const stored = Buffer.concat(chunks.map((c) => c.data));
    t.equal(stored.indexOf(doc.subarray(100, 164)), -1, 'document bytes are not stored in plaintext');
    const parts: Buffer[] = [];
    for await (const p of decryptPackage(storageContext(svc.deps), msg.package_id)) parts.push(p);
    const zip = Buffer.concat(parts);
    t.equal(zip.subarray(0, 4).toString('latin1'), 'PK\u0003\u0004');
  });

  await t.test('routing: reserved, no mailbox, deleted and unknown persons get precise 422s; print details route to PRINT', async (t) => {
    const cases: [string, string][] = [
      [PERSONS.reserved, 'recipient-reserved'],
      [PERSONS.noMailbox, 'no-digital-mailbox'],
      [PERSONS.deleted, 'recipient-deleted'],
      [PERSONS.notRegistered, 'invalid-recipient'],
    ];
    for (const [personId, slug] of cases) {
      const res = await send(letter({ recipient: { personId } }));
      t.equal(res.statusCode, 422, slug);
      t.equal(res.json().type, `https://postbud.dev/problems/ingestion/${slug}`);
      t.match(res.headers['content-type'], /^application\/problem\+json/);
    }
    const printed = await send(letter({ recipient: { personId: PERSONS.reserved }, print: PRINT }));
    t.equal(printed.statusCode, 201, printed.body);
    t.match(printed.json(), { route: 'PRINT', provider: { orgnr: PRINTER } });
    const d = await db.selectFrom('deliveries').selectAll().where('message_id', '=', printed.json().id).executeTakeFirstOrThrow();
    t.match(d, { route: 'PRINT', provider_orgnr: PRINTER, mailbox_address: null });
    t.match(d.print_instructions, { color: 'BW', class: 'B' });
    const deleted = await send(letter({ recipient: { personId: PERSONS.deleted }, print: PRINT }));
    t.equal(deleted.json().type, 'https://postbud.dev/problems/ingestion/recipient-deleted', 'a deleted person gets no paper either');
    const fallback = await send(letter({ print: PRINT }));
    t.equal(fallback.json().route, 'DIGITAL', 'print details on a digital recipient are a fallback');
    const m = await db.selectFrom('messages').select('print').where('id', '=', fallback.json().id).executeTakeFirstOrThrow();
    t.match(m.print, { color: 'BW' });
  });

  await t.test('Idempotency-Key: required; same request -> same answer; other request -> 422; one letter', async (t) => {
    const missing = await send(letter(), undefined, { key: null });
    t.equal(missing.statusCode, 400);
    t.equal(missing.json().type, 'https://postbud.dev/problems/ingestion/idempotency-key-required');
    const bad = await send(letter(), undefined, { key: 'has space' });
    t.equal(bad.statusCode, 400);

    const key = newKey();
    const doc = PDF();
    const first = await send(letter(), [{ name: 'vedtak.pdf', content: doc }], { key });
    t.equal(first.statusCode, 201);
    const again = await send(letter(), [{ name: 'vedtak.pdf', content: doc }], { key });
    t.equal(again.statusCode, 201);
    t.same(again.json(), first.json(), 'the same answer');
    t.equal(again.headers['idempotent-replayed'], 'true');
    const otherDoc = await send(letter(), [{ name: 'vedtak.pdf', content: PDF() }], { key });
    t.equal(otherDoc.statusCode, 422, 'other document bytes under the same key');
    t.equal(otherDoc.json().type, 'https://postbud.dev/problems/ingestion/idempotency-key-reused');
    const otherTitle = await send(letter({ title: 'Annet' }), [{ name: 'vedtak.pdf', content: doc }], { key });
    t.equal(otherTitle.statusCode, 422, 'other message part under the same key');
    const { n } = await db.selectFrom('messages').select((eb) => eb.fn.countAll<string>().as('n')).where('id', '=', first.json().id).executeTakeFirstOrThrow();
    t.equal(Number(n), 1);
    const otherSender = await send(letter(), [{ name: 'vedtak.pdf', content: doc }], { key, auth: otherToken });
    t.equal(otherSender.statusCode, 201, 'keys are per sender');
    t.not(otherSender.json().id, first.json().id);
  });

  await t.test('a concurrent duplicate gets 409 while the first is in flight', async (t) => {
    const key = newKey();
    const doc = PDF(3 * 1024 * 1024);
    const results = await Promise.all([0, 1, 2, 3].map(() => send(letter(), [{ name: 'vedtak.pdf', content: doc }], { key })));
    const codes = results.map((r) => r.statusCode).sort();
    t.ok(codes.includes(201), `one succeeds: ${codes.join(',')}`);
    t.ok(codes.every((c) => c === 201 || c === 409), `the others succeed (replay) or get 409: ${codes.join(',')}`);
    for (const r of results.filter((r) => r.statusCode === 409)) t.equal(r.json().type, 'https://postbud.dev/problems/ingestion/idempotency-in-flight');
    const ids = new Set(results.filter((r) => r.statusCode === 201).map((r) => r.json().id));
    t.equal(ids.size, 1, 'one letter');
  });

  await t.test('senderReference is unique per sender', async (t) => {
    const first = await send(letter({ senderReference: 'sak-77' }));
    t.equal(first.statusCode, 201);
    const dup = await send(letter({ senderReference: 'sak-77' }));
    t.equal(dup.statusCode, 409);
    t.equal(dup.json().type, 'https://postbud.dev/problems/ingestion/duplicate-sender-reference');
    const other = await send(letter({ senderReference: 'sak-77' }), undefined, { auth: otherToken });
    t.equal(other.statusCode, 201, 'another sender may use the same reference');
  });

  await t.test('authorization: missing scope, not onboarded, suspended, forged, expired', async (t) => {
    const noScope = await send(letter(), undefined, { auth: await svc.token({ org: SENDER, scope: SCOPES.lookup }) });
    t.equal(noScope.statusCode, 403);
    t.equal(noScope.json().type, 'https://postbud.dev/problems/insufficient-scope');
    const unknown = await send(letter(), undefined, { auth: await svc.token({ org: UNKNOWN_ORG, scope: SCOPES.send }) });
    t.equal(unknown.statusCode, 403);
    t.equal(unknown.json().type, 'https://postbud.dev/problems/ingestion/sender-not-onboarded');
    const suspended = await send(letter(), undefined, { auth: await svc.token({ org: SUSPENDED_SENDER, scope: SCOPES.send }) });
    t.equal(suspended.statusCode, 403);
    t.equal(suspended.json().type, 'https://postbud.dev/problems/ingestion/sender-suspended');
    const dataDir = (svc.deps as unknown as { dataDir: string }).dataDir;
    const now = Math.floor(Date.now() / 1000);
    const forged = await forgeToken(dataDir, { aud: 'postbud', exp: now + 60, scope: SCOPES.send, consumer: consumer(SENDER) });
    t.equal((await send(letter(), undefined, { auth: forged })).statusCode, 401);
    const expired = await signWithDevKey(dataDir, { iss: DEV_ISSUER, aud: 'postbud', iat: now - 120, exp: now - 60, scope: SCOPES.send, consumer: consumer(SENDER) });
    const exp = await send(letter(), undefined, { auth: expired });
    t.equal(exp.statusCode, 401);
    t.equal(exp.json().type, 'https://postbud.dev/problems/token-expired');
    const citizen = await send(letter(), undefined, { auth: await svc.token({ pid: PERSONS.digital, acr: 'idporten-loa-high' }) });
    t.equal(citizen.statusCode, 403);
    const none = await svc.app.inject({ method: 'POST', url: '/v1/messages' });
    t.equal(none.statusCode, 401);
    const n = await db.selectFrom('messages').select((eb) => eb.fn.countAll<string>().as('n')).where('sender_orgnr', 'in', [UNKNOWN_ORG, SUSPENDED_SENDER]).executeTakeFirstOrThrow();
    t.equal(Number(n.n), 0);
  });
});
