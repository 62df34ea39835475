import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { compactVerify, createLocalJWKSet, type JSONWebKeySet } from 'jose';
import { service } from '../../../services/ingestion/app.js';
import { nextMovePushRound } from '../../../services/ingestion/nextmove/subscriptions.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { appendEvent } from '../../../shared/evidence/events.js';
import { storageContext } from '../../../shared/storage/context.js';
import { testService } from '../../helpers/service.js';
import { DOC_RECEIVER, DOCS, isNextMoveError, keys, multipartBody, ours, setup, uploadHeaders, type Json } from './nextmove-fixtures.js';
import { OTHER_SENDER, PERSONS, seedRegistry, SENDER, SUSPENDED_SENDER, UNKNOWN_ORG } from './fixtures.js';

/**
 * The next-move API's refusals (bad SBDs, uploads and sends that may not happen, other senders,
 * junk input) and its webhook subscriptions, against the documentation's examples
 * (tests/fixtures/nextmove/restdocs-dpi.json).
 */

t.test('bad SBDs get precise 4xx and leave nothing half-created', async (t) => {
  const api = await setup(t);
  const db = api.svc.deps.db.kysely;
  const base = () => ours(DOCS.createDigital.request);
  const cases: [string, (sbd: Json) => void, number, string | RegExp][] = [
    ['missing receiver', (s) => delete s.standardBusinessDocumentHeader.receiver, 400, 'standardBusinessDocumentHeader.receiver'],
    ['empty receiver', (s) => (s.standardBusinessDocumentHeader.receiver = []), 400, 'standardBusinessDocumentHeader.receiver'],
    ['an organisation as receiver (DPO)', (s) => (s.standardBusinessDocumentHeader.receiver[0].identifier.value = DOC_RECEIVER), 400, 'POSTBUD_INGESTION_NEXTMOVE_RECEIVER_NOT_PERSON'],
    ['a bare organisation number', (s) => (s.standardBusinessDocumentHeader.receiver[0].identifier.value = '910075918'), 400, 'POSTBUD_INGESTION_NEXTMOVE_RECEIVER_NOT_PERSON'],
    ['not a fødselsnummer', (s) => (s.standardBusinessDocumentHeader.receiver[0].identifier.value = '12345678901'), 400, 'POSTBUD_INGESTION_INVALID_PERSON_ID'],
    ['unknown process', (s) => (s.standardBusinessDocumentHeader.businessScope.scope[0].identifier = 'urn:no:difi:profile:arkivmelding:administrasjon:ver1.0'), 400, 'POSTBUD_INGESTION_NEXTMOVE_UNKNOWN_PROCESS'],
    ['sender is not the token org', (s) => (s.standardBusinessDocumentHeader.sender[0].identifier.value = `0192:${OTHER_SENDER}`), 403, 'POSTBUD_INGESTION_NEXTMOVE_SENDER_MISMATCH'],
    ['unknown message type', (s) => (s.standardBusinessDocumentHeader.documentIdentification.type = 'strange'), 400, 'standardBusinessDocumentHeader.documentIdentification.type'],
    ['DPV is out of scope', (s) => { s.standardBusinessDocumentHeader.documentIdentification.type = 'digital_dpv'; s.digital_dpv = {}; delete s.digital; }, 400, 'Service DPV is not supported'],
    ['arkivmelding (DPO) is out of scope', (s) => { s.standardBusinessDocumentHeader.documentIdentification.type = 'arkivmelding'; s.arkivmelding = { hoveddokument: 'x.pdf' }; delete s.digital; }, 400, 'Service DPO is not supported'],
    ['innsynskrav (DPE) is out of scope', (s) => { s.standardBusinessDocumentHeader.documentIdentification.type = 'innsynskrav'; s.innsynskrav = {}; delete s.digital; }, 400, 'Service DPE is not supported'],
    ['digital without its business message', (s) => delete s.digital, 400, 'digital: Must not be null'],
    ['wrong standard', (s) => (s.standardBusinessDocumentHeader.documentIdentification.standard = 'urn:no:difi:digitalpost:xsd:fysisk::print'), 400, 'standardBusinessDocumentHeader.documentIdentification.standard'],
    ['messageId not a UUID', (s) => (s.standardBusinessDocumentHeader.documentIdentification.instanceIdentifier = 'abc'), 400, 'Must be a UUID'],
    ['security level 2', (s) => (s.digital.sikkerhetsnivaa = 2), 400, 'digital.sikkerhetsnivaa'],
    ['unknown language', (s) => (s.digital.spraak = 'xx'), 400, 'digital.spraak'],
    ['metadata files', (s) => (s.digital.metadataFiler = { 'a.xml': 'meta' }), 400, 'digital.metadataFiler'],
    ['an unknown field', (s) => (s.digital.ikkeSensitivTittel = 'x'), 400, 'digital.ikkeSensitivTittel'],
    ['a very long title', (s) => (s.digital.tittel = 'x'.repeat(10_000)), 400, 'digital.tittel'],
  ];
  for (const [what, change, status, expect] of cases) {
    const sbd = base();
    change(sbd);
    const res = await api.call('POST', '/api/messages/out', { payload: sbd });
    const body = isNextMoveError(t, res, status, '/api/messages/out', what);
    t.ok(typeof expect === 'string' ? JSON.stringify(body).includes(expect) : expect.test(JSON.stringify(body)), `${what}: ${body.message}`);
  }
  const typeViolation = await api.call('POST', '/api/messages/out', { payload: { ...base(), standardBusinessDocumentHeader: { ...base().standardBusinessDocumentHeader, documentIdentification: { ...base().standardBusinessDocumentHeader.documentIdentification, type: 'strange' } } } });
  t.same({ ...typeViolation.json(), timestamp: 0, path: 0, description: 0, code: 0 }, { ...DOCS.constraintViolation, timestamp: 0, path: 0, description: 0, code: 0 }, 'the documented constraint violation, field for field');
  const dpo = await api.call('POST', '/api/messages/out', { payload: { standardBusinessDocumentHeader: { ...base().standardBusinessDocumentHeader, documentIdentification: { ...base().standardBusinessDocumentHeader.documentIdentification, type: 'arkivmelding' } }, arkivmelding: {} } });
  t.equal(dpo.json().exception, DOCS.validationError.exception, 'out of scope: the documented ServiceNotEnabled exception');
  t.equal((await api.call('POST', '/api/messages/out', { payload: '{not json', headers: { 'content-type': 'application/json' } })).statusCode, 400, 'not JSON');
  t.equal((await db.selectFrom('nextmove_messages').select('message_id').execute()).length, 0, 'nothing created by any of them');

  // Send without documents, then with a main document that does not match its type.
  const sbd = base();
  const id = sbd.standardBusinessDocumentHeader.documentIdentification.instanceIdentifier as string;
  t.equal((await api.call('POST', '/api/messages/out', { payload: sbd })).statusCode, 200);
  const empty = isNextMoveError(t, await api.call('POST', `/api/messages/out/${id}`), 400, `/api/messages/out/${id}`, 'send without documents');
  t.equal(empty.code, 'POSTBUD_INGESTION_NEXTMOVE_NO_DOCUMENTS');
  t.equal((await api.call('PUT', `/api/messages/out/${id}`, { headers: { 'content-type': 'text/plain' }, payload: 'x' })).statusCode, 400, 'no Content-Disposition');
  t.equal((await api.call('PUT', `/api/messages/out/${id}`, { headers: uploadHeaders('kafka_quotes.txt', 'application/pdf'), payload: 'not a pdf' })).statusCode, 422, 'content does not match its type');
  t.equal((await api.call('PUT', `/api/messages/out/${id}`, { headers: uploadHeaders('kafka_quotes.exe', 'application/x-msdownload'), payload: 'MZ' })).statusCode, 415, 'type not allowed');
  t.equal((await api.call('PUT', `/api/messages/out/${id}`, { headers: uploadHeaders('../etc/passwd'), payload: 'x' })).statusCode, 400, 'not a plain file name');
  t.equal((await api.call('PUT', `/api/messages/out/${id}`, { headers: uploadHeaders('kafka_quotes.txt'), payload: 'one' })).statusCode, 200);
  t.equal((await api.call('PUT', `/api/messages/out/${id}`, { headers: uploadHeaders('kafka_quotes.txt'), payload: 'one' })).statusCode, 200, 'the same upload again');
  t.equal((await api.call('PUT', `/api/messages/out/${id}`, { headers: uploadHeaders('kafka_quotes.txt'), payload: 'two' })).statusCode, 409, 'another file under the same name');
  const other = await api.svc.token({ org: OTHER_SENDER, scope: SCOPES.send });
  t.equal((await api.call('PUT', `/api/messages/out/${id}`, { token: other, headers: uploadHeaders('x.txt'), payload: 'x' })).statusCode, 404, "another sender cannot upload to my message");
  t.equal((await api.call('GET', `/api/messages/out/${id}`, { token: other })).statusCode, 404);
  t.equal((await api.call('DELETE', `/api/messages/out/${id}`, { token: other })).statusCode, 404);
  const stolen = structuredClone(sbd);
  stolen.standardBusinessDocumentHeader.sender[0].identifier.value = `0192:${OTHER_SENDER}`;
  t.equal((await api.call('POST', '/api/messages/out', { token: other, payload: stolen })).statusCode, 409, "another sender cannot take over my messageId");
  t.equal((await api.call('GET', '/api/messages/out/not-a-uuid')).statusCode, 404);

  // Delete before sending: gone with its documents and status.
  t.equal((await api.call('DELETE', `/api/messages/out/${id}`)).statusCode, 200);
  t.equal((await db.selectFrom('nextmove_documents').select('seq').execute()).length, 0);
  t.equal((await api.call('GET', '/api/statuses')).json().totalElements, 0);
  isNextMoveError(t, await api.call('DELETE', `/api/messages/out/${id}`), 404, `/api/messages/out/${id}`, 'deleted');
  t.equal((await db.selectFrom('messages').select('id').execute()).length, 0, 'no letter from any of it');

  // A suspended sender cannot create.
  const suspended = await api.svc.token({ org: SUSPENDED_SENDER, scope: SCOPES.send });
  const sus = ours(DOCS.createDigital.request);
  sus.standardBusinessDocumentHeader.sender[0].identifier.value = `0192:${SUSPENDED_SENDER}`;
  sus.standardBusinessDocumentHeader.documentIdentification.instanceIdentifier = '3b7b7d7e-0d6c-4d53-9a4e-5a3b1d0e9f13';
  t.match((await api.call('POST', '/api/messages/out', { token: suspended, payload: sus })).json(), { status: 403, code: 'POSTBUD_INGESTION_SENDER_SUSPENDED' });
});

t.test('subscriptions: CRUD as documented, ping, signed status events', async (t) => {
  const api = await setup(t);
  const db = api.svc.deps.db.kysely;
  const hub = storageContext(api.svc.deps).hub;
  const received: { path: string; body: Buffer; signature: string }[] = [];
  let refuse = false;
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      received.push({ path: req.url ?? '', body: Buffer.concat(parts), signature: String(req.headers['postbud-signature']) });
      res.statusCode = refuse ? 500 : 200;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/messages/incoming`;

  const request = { ...DOCS.createSubscription.request, pushEndpoint: endpoint };
  const created = await api.call('POST', '/api/subscriptions', { payload: request });
  t.equal(created.statusCode, 200, created.body);
  t.same({ ...created.json(), id: 0 }, { ...DOCS.createSubscription.response, pushEndpoint: endpoint, id: 0 }, 'the documented answer');
  t.equal(received.length, 1, 'pinged on creation');
  const ping = JSON.parse(received[0]!.body.toString());
  t.same(keys(ping), keys(DOCS.pingEvent));
  t.equal(ping.event, 'ping');
  const jwks = createLocalJWKSet((await hub.jwks()) as JSONWebKeySet);
  const [h, , s] = received[0]!.signature.split('.');
  t.equal((await compactVerify(`${h}.${received[0]!.body.toString('base64url')}.${s}`, jwks)).protectedHeader.typ, 'postbud-webhook+jws', 'signed like receipt webhooks');
  const subId = created.json().id as number;

  const list = (await api.call('GET', '/api/subscriptions')).json();
  t.same(keys(list), keys(DOCS.listSubscriptions.response));
  t.same(list.content, [created.json()]);
  t.same((await api.call('GET', `/api/subscriptions/${subId}`)).json(), created.json());
  const notFound = isNextMoveError(t, await api.call('GET', '/api/subscriptions/84'), 404, '/api/subscriptions/84', 'unknown subscription');
  t.equal(notFound.message, DOCS.subscriptionNotFound.message, 'the documented message');
  t.equal(notFound.exception, DOCS.subscriptionNotFound.exception);
  const violation = isNextMoveError(t, await api.call('POST', '/api/subscriptions', { payload: { ...request, event: 'nonexistent' } }), 400, '/api/subscriptions', 'constraint violation');
  t.match(violation.errors, [{ field: 'event', objectName: 'event', rejectedValue: 'nonexistent', bindingFailure: false }]);
  t.equal((await api.call('POST', '/api/subscriptions', { payload: { ...request, filter: 'colour=red' } })).statusCode, 400, 'unknown filter');
  t.equal((await api.call('POST', '/api/subscriptions', { payload: { ...request, pushEndpoint: 'not a url' } })).statusCode, 400);
  refuse = true;
  t.match((await api.call('POST', '/api/subscriptions', { payload: request })).json(), { status: 400, code: 'POSTBUD_INGESTION_NEXTMOVE_PING_FAILED' }, 'an endpoint refusing the ping');
  refuse = false;
  const other = await api.svc.token({ org: OTHER_SENDER, scope: SCOPES.send });
  t.equal((await api.call('GET', `/api/subscriptions/${subId}`, { token: other })).statusCode, 404, "another sender's subscription");
  t.equal((await api.call('DELETE', `/api/subscriptions/${subId}`, { token: other })).statusCode, 404);
  t.equal((await api.call('PUT', `/api/subscriptions/${subId}`, { token: other, payload: request })).statusCode, 404);
  const stranger = await api.svc.token({ org: UNKNOWN_ORG, scope: SCOPES.send });
  t.match((await api.call('POST', '/api/subscriptions', { token: stranger, payload: request })).json(), { status: 403, code: 'POSTBUD_INGESTION_SENDER_NOT_ONBOARDED' }, 'only onboarded senders subscribe');
  t.match((await api.call('GET', `/api/capabilities/${PERSONS.digital}`, { token: stranger })).json(), { status: 403 }, 'or ask capabilities');
  await api.call('DELETE', '/api/subscriptions', { token: other });
  t.equal((await api.call('GET', '/api/subscriptions')).json().totalElements, 1, "another sender's delete-all leaves mine");

  // Update to our outgoing DPI statuses; a second subscription with a filter that excludes them.
  const update = { ...DOCS.updateSubscription.request, pushEndpoint: endpoint, filter: 'status=SENDT,LEVERT&serviceIdentifier=DPI&direction=OUTGOING' };
  t.equal((await api.call('PUT', `/api/subscriptions/${subId}`, { payload: update })).statusCode, 200);
  t.equal((await api.call('POST', '/api/subscriptions', { payload: { ...request, name: 'Incoming only', filter: 'direction=INCOMING' } })).statusCode, 200);
  received.length = 0;

  const sbd = ours(DOCS.createDigital.request);
  const id = sbd.standardBusinessDocumentHeader.documentIdentification.instanceIdentifier as string;
  await api.call('POST', '/api/messages/out', { payload: sbd });
  await api.call('PUT', `/api/messages/out/${id}`, { headers: uploadHeaders('kafka_quotes.txt'), payload: 'x' });
  await api.call('POST', `/api/messages/out/${id}`);
  await appendEvent(db, hub, { messageId: id, senderOrgnr: SENDER, type: 'DELIVERED', data: {} });
  const opts = { allowPrivate: true, maxAttempts: 3, retryBaseMs: 10, timeoutMs: 5000 };
  refuse = true;
  await nextMovePushRound(db, hub, opts);
  t.equal(received.length, 2, 'SENDT and LEVERT pushed (OPPRETTET filtered out), the first attempt refused');
  refuse = false;
  received.length = 0;
  await db.updateTable('nextmove_pushes').set({ next_attempt_at: new Date(0) }).execute(); // due now instead of after the backoff
  await nextMovePushRound(db, hub, opts);
  const events = received.map((r) => JSON.parse(r.body.toString()));
  t.same(events.map((e) => e.status).sort(), ['LEVERT', 'SENDT'], 'retried and delivered');
  for (const e of events) {
    t.same(keys(e), keys(DOCS.statusEvent), 'the documented status event fields');
    t.match(e, { resource: 'messages', event: 'status', messageId: id, direction: 'OUTGOING', serviceIdentifier: 'DPI' });
  }
  for (const r of received) {
    const [hh, , ss] = r.signature.split('.');
    await compactVerify(`${hh}.${r.body.toString('base64url')}.${ss}`, jwks);
  }
  received.length = 0;
  await nextMovePushRound(db, hub, opts);
  t.equal(received.length, 0, 'delivered once');

  t.equal((await api.call('DELETE', `/api/subscriptions/${subId}`)).statusCode, 200);
  t.equal((await api.call('DELETE', '/api/subscriptions')).statusCode, 200);
  t.equal((await api.call('GET', '/api/subscriptions')).json().totalElements, 0);
  t.equal((await db.selectFrom('nextmove_pushes').select('status_id').execute()).length, 0, 'their pushes go with them');
});

t.test('subscriptions refuse private push endpoints without the development flag (SSRF)', async (t) => {
  const svc = await testService(t, service);
  await seedRegistry(svc.deps.db.kysely);
  const token = await svc.token({ org: SENDER, scope: SCOPES.send });
  for (const url of ['http://my.pushendpoint.no/messages/incoming', 'https://127.0.0.1/hook', 'https://169.254.169.254/latest', 'https://[::1]/x', 'https://localhost/x']) {
    const res = await svc.app.inject({ method: 'POST', url: '/api/subscriptions', headers: { authorization: `Bearer ${token}` }, payload: { ...DOCS.createSubscription.request, pushEndpoint: url } });
    t.equal(res.statusCode, 422, `${url} refused`);
    t.match(res.json(), { code: 'POSTBUD_INGESTION_WEBHOOK_URL_REFUSED', path: '/api/subscriptions' });
  }
});

t.test('junk never gets a 5xx on /api/', async (t) => {
  const api = await setup(t);
  const sbd = ours(DOCS.createDigital.request);
  const id = sbd.standardBusinessDocumentHeader.documentIdentification.instanceIdentifier as string;
  await api.call('POST', '/api/messages/out', { payload: sbd });
  const junk = ['', 'x', '\u0000', '%00', 'ø'.repeat(300), '-1', '1e309', '99999999999999999999', "'; drop table messages; --", '{}', '[]', 'null'];
  const urls = (v: string) => {
    const e = encodeURIComponent(v);
    return [
      `/api/capabilities/${e}?securityLevel=${e}`,
      `/api/capabilities/${PERSONS.digital}?process=${e}`,
      `/api/messages/out?page=${e}&size=${e}&sort=${e}`,
      `/api/messages/out/${e}`,
      `/api/statuses?id=${e}&messageId=${e}&status=${e}&fromDateTime=${e}&toDateTime=${e}`,
      `/api/statuses/${e}?page=${e}`,
      `/api/conversations?messageId=${e}&finished=${e}&sort=${e}`,
      `/api/conversations/${e}`,
      `/api/conversations/messageId/${e}`,
      `/api/subscriptions/${e}`,
      `/api/subscriptions?page=${e}&size=${e}`,
    ];
  };
  for (const v of junk) {
    for (const url of urls(v)) {
      const res = await api.call('GET', url);
      t.ok(res.statusCode < 500, `GET ${url}: ${res.statusCode}`);
    }
    for (const payload of [v, { standardBusinessDocumentHeader: v }, { ...sbd, digital: v }, { name: v, pushEndpoint: v, resource: v, event: v, filter: v }]) {
      for (const url of ['/api/messages/out', '/api/subscriptions', `/api/messages/out/${id}`, '/api/messages/out/multipart']) {
        const res = await api.call('POST', url, { payload: typeof payload === 'string' ? payload : JSON.stringify(payload), headers: { 'content-type': 'application/json' } });
        t.ok(res.statusCode < 500, `POST ${url} ${JSON.stringify(payload).slice(0, 40)}: ${res.statusCode}`);
      }
    }
    const put = await api.call('PUT', `/api/messages/out/${id}?title=${encodeURIComponent(v)}`, { headers: { 'content-type': v.replace(/[^\x20-\x7e]/g, '') || 'x', 'content-disposition': `attachment; filename=${v.replace(/[^\x20-\x7e]/g, '')}` }, payload: v || 'x' });
    t.ok(put.statusCode < 500, `PUT ${JSON.stringify(v).slice(0, 20)}: ${put.statusCode}`);
  }
  const nul = ours(DOCS.createDigital.request);
  nul.standardBusinessDocumentHeader.documentIdentification.instanceIdentifier = '4b7b7d7e-0d6c-4d53-9a4e-5a3b1d0e9f14';
  nul.digital.tittel = 'a\u0000b';
  const mp = multipartBody(nul, [{ name: 'x\u0000y', filename: 'kafka_quotes.txt', type: 'text/plain', content: Buffer.from('x') }]);
  const nulRes = await api.call('POST', '/api/messages/out/multipart', { headers: { 'content-type': mp.contentType }, payload: mp.payload });
  t.equal(nulRes.statusCode, 400, `multipart with a NUL in the SBD: ${nulRes.body}`);
  t.equal((await api.call('POST', '/api/messages/out', { payload: nul })).statusCode, 400, 'JSON with a NUL');
  const noType = await api.svc.app.inject({ method: 'PUT', url: `/api/messages/out/${id}`, headers: { authorization: `Bearer ${api.token}`, 'content-disposition': 'attachment; filename=a.txt' }, payload: 'abc' });
  t.ok(noType.statusCode >= 400 && noType.statusCode < 500, `PUT without Content-Type: ${noType.statusCode}`);
  const empty = await api.call('PUT', `/api/messages/out/${id}`, { headers: uploadHeaders('a.txt') });
  t.ok(empty.statusCode >= 400 && empty.statusCode < 500, `PUT without a body: ${empty.statusCode}`);
});

t.test("an empty or cut-off JSON body is a 400 in next-move's error shape on every JSON route (parsed before any lookup)", async (t) => {
  const api = await setup(t);
  const sbd = ours(DOCS.createDigital.request);
  await api.call('POST', '/api/messages/out', { payload: sbd });
  for (const [method, url] of [['POST', '/api/messages/out'], ['POST', '/api/subscriptions'], ['PUT', '/api/subscriptions/1']] as const) {
    for (const payload of ['', '{"standardBusinessDocumentHeader":']) {
      const res = await api.call(method, url, { headers: { 'content-type': 'application/json' }, payload });
      const body = isNextMoveError(t, res, 400, url, `${method} ${url} with ${JSON.stringify(payload)}`);
      t.equal(body.code, 'POSTBUD_MALFORMED_BODY', `${method} ${url}: the body could not be parsed`);
      t.equal(body.error, 'Bad Request');
    }
  }
  const rows = await api.svc.deps.db.kysely.selectFrom('nextmove_messages').select('message_id').execute();
  t.equal(rows.length, 1, 'nothing was created by the refused bodies');
});

t.test("the shared refusals (405, 404, 414, 415) keep next-move's error shape under /api/, and problem+json elsewhere", async (t) => {
  const api = await setup(t);
  const patch = isNextMoveError(t, await api.call('PATCH', '/api/statuses'), 405, '/api/statuses', 'a known path with another method');
  t.same(patch.allowed, ['GET'], 'names the methods the path takes');
  isNextMoveError(t, await api.call('GET', '/api/messages/in/peek'), 404, '/api/messages/in/peek', 'incoming messages are not supported');
  const long = `/api/messages/out/${'x'.repeat(200)}`;
  const tooLong = isNextMoveError(t, await api.call('GET', long), 414, long, 'the router refuses a path segment longer than any id');
  t.equal(tooLong.code, 'POSTBUD_URI_TOO_LONG');
  const xml = isNextMoveError(t, await api.call('POST', '/api/subscriptions', { headers: { 'content-type': 'application/xml' }, payload: '<x/>' }), 415, '/api/subscriptions', 'XML');
  t.same(xml.accepted, ['application/json'], 'the 415 lists what the operation takes');
  const outside = await api.call('GET', `/v1/messages/${'x'.repeat(200)}`);
  t.equal(outside.statusCode, 414);
  t.match(String(outside.headers['content-type']), /^application\/problem\+json/, 'outside /api/ the same refusal is problem+json');
});
