import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { compactVerify, createLocalJWKSet, type JSONWebKeySet } from 'jose';
import { service } from '../../../services/ingestion/app.js';
import { nextMovePushRound } from '../../../services/ingestion/nextmove/subscriptions.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { appendEvent } from '../../../shared/evidence/events.js';
import { storageContext } from '../../../shared/storage/context.js';
import { testService, type TestService } from '../../helpers/service.js';
import { DOC_RECEIVER, DOCS, keys, substitute, type Json } from './nextmove-fixtures.js';
import { OTHER_SENDER, PDF, PERSONS, seedRegistry, SENDER, SUSPENDED_SENDER, UNKNOWN_ORG } from './fixtures.js';

/**
 * The next-move API against the documentation's own DPI examples
 * (tests/fixtures/nextmove/restdocs-dpi.json, copied from felleslosninger/docs), with our seeded
 * sender and persons substituted.
 */

/** A documentation example with our sender and `person` in place of theirs. */
const ours = (example: unknown, person: string = PERSONS.digital): Json => substitute(example, SENDER, person);

const withoutCreation = (sbd: Json) => {
  const copy = structuredClone(sbd);
  delete copy.standardBusinessDocumentHeader.documentIdentification.creationDateAndTime;
  return copy;
};

interface Api {
  svc: TestService;
  call(method: string, url: string, opts?: { payload?: unknown; headers?: Record<string, string>; token?: string }): Promise<{ statusCode: number; json: () => Json; body: string; headers: Record<string, unknown> }>;
  token: string;
}

async function setup(t: Test, env: Record<string, string> = {}): Promise<Api> {
  const svc = await testService(t, service, { env: { WEBHOOK_ALLOW_PRIVATE: 'true', ...env } });
  await seedRegistry(svc.deps.db.kysely);
  const token = await svc.token({ org: SENDER, scope: SCOPES.send });
  return {
    svc,
    token,
    call: (method, url, opts = {}) =>
      svc.app.inject({
        method: method as 'GET',
        url,
        headers: { authorization: `Bearer ${opts.token ?? token}`, ...opts.headers },
        ...(opts.payload === undefined ? {} : { payload: opts.payload as string }),
      }),
  };
}

const uploadHeaders = (filename: string, type = 'text/plain;charset=UTF-8', name = 'Before The Law') => ({
  'content-type': type,
  'content-disposition': `attachment; name=${name}; filename=${filename}`,
});

/** A next-move error body as documented (timestamp, status, error, exception, message, path). */
function isNextMoveError(t: Test, res: { statusCode: number; json: () => Json; headers: Record<string, unknown> }, status: number, path: string, what: string) {
  t.equal(res.statusCode, status, what);
  t.match(String(res.headers['content-type']), /^application\/json/, `${what}: application/json, not problem+json`);
  const body = res.json();
  t.same(keys(DOCS.subscriptionNotFound).every((k) => k in body), true, `${what}: every documented error field`);
  t.match(body, { status, path, error: String, exception: String, message: String, timestamp: String }, what);
  return body;
}

function multipartBody(sbd: unknown, files: { name: string; filename: string; type: string; content: Buffer }[]) {
  const boundary = '6o2knFse3p53ty9dmcQvWAIx1zInP11uCfbm';
  const chunks: Buffer[] = [Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name=sbd\r\nContent-Type: application/json\r\n\r\n${JSON.stringify(sbd)}\r\n`)];
  for (const f of files) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${f.name}"; filename="${f.filename}"\r\nContent-Type: ${f.type}\r\n\r\n`), f.content, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

t.test('capabilities for an individual in next-move shape, from the native routing', async (t) => {
  const api = await setup(t);
  const expected = DOCS.capabilitiesIndividual.response;
  const digital = await api.call('GET', `/api/capabilities/${PERSONS.digital}`);
  t.equal(digital.statusCode, 200, digital.body);
  const body = digital.json();
  t.equal(body.capabilities.length, expected.capabilities.length, 'one per DPI process, as documented');
  body.capabilities.forEach((c: Json, i: number) => {
    t.same(keys(c), keys(expected.capabilities[i]), 'the documented fields');
    t.same({ process: c.process, serviceIdentifier: c.serviceIdentifier, documentTypes: c.documentTypes }, {
      process: expected.capabilities[i].process,
      serviceIdentifier: 'DPI',
      documentTypes: expected.capabilities[i].documentTypes,
    });
    t.equal(c.postAddress, null, 'no postal address held');
  });
  t.same((await api.call('GET', `/api/capabilities/${PERSONS.digital}?securityLevel=4`)).json(), body, 'level 4 is supported');
  const vedtak = (await api.call('GET', `/api/capabilities/${PERSONS.digital}?process=urn:no:difi:profile:digitalpost:vedtak:ver1.0`)).json();
  t.same(vedtak.capabilities.map((c: Json) => c.process), ['urn:no:difi:profile:digitalpost:vedtak:ver1.0'], 'process filter');
  t.same((await api.call('GET', `/api/capabilities/${PERSONS.digital}?process=urn:no:difi:profile:arkivmelding:administrasjon:ver1.0`)).json(), { capabilities: [] });

  for (const person of [PERSONS.noMailbox, PERSONS.reserved]) {
    const print = (await api.call('GET', `/api/capabilities/${person}`)).json();
    t.same(print.capabilities.map((c: Json) => c.documentTypes), [
      [{ type: 'print', standard: 'urn:no:difi:digitalpost:xsd:fysisk::print' }],
      [{ type: 'print', standard: 'urn:no:difi:digitalpost:xsd:fysisk::print' }],
    ], 'no digital mailbox: print');
  }
  t.same((await api.call('GET', `/api/capabilities/${PERSONS.deleted}`)).json(), { capabilities: [] }, 'neither: nothing');
  t.same((await api.call('GET', `/api/capabilities/${PERSONS.notRegistered}`)).json(), { capabilities: [] });

  isNextMoveError(t, await api.call('GET', '/api/capabilities/987654321'), 400, '/api/capabilities/987654321', 'an organisation (DPO) is out of scope');
  isNextMoveError(t, await api.call('GET', '/api/capabilities/12345678901'), 400, '/api/capabilities/12345678901', 'not a fødselsnummer');
  isNextMoveError(t, await api.call('GET', `/api/capabilities/${PERSONS.digital}?securityLevel=9`), 400, `/api/capabilities/${PERSONS.digital}`, 'level out of range');
  isNextMoveError(t, await api.call('GET', `/api/capabilities/${PERSONS.digital}`, { token: 'nope' }), 401, `/api/capabilities/${PERSONS.digital}`, 'no valid token');
  const lookupOnly = await api.svc.token({ org: SENDER, scope: SCOPES.lookup });
  isNextMoveError(t, await api.call('GET', `/api/capabilities/${PERSONS.digital}`, { token: lookupOnly }), 403, `/api/capabilities/${PERSONS.digital}`, 'the send scope is required');
  const native = await api.call('GET', '/v1/capabilities/12345678901');
  t.match(String(native.headers['content-type']), /problem\+json/, 'other routes keep problem+json');
  isNextMoveError(t, await api.call('GET', '/api/no-such-thing'), 404, '/api/no-such-thing', 'unknown /api/ route');
});

t.test('the documented DPI flow: create digital and print, upload, send, statuses, peek, conversations', async (t) => {
  const api = await setup(t);
  const db = api.svc.deps.db.kysely;

  // Create (Example 2: a DPI digital message).
  const create = ours(DOCS.createDigital.request);
  const created = await api.call('POST', '/api/messages/out', { payload: create });
  t.equal(created.statusCode, 200, created.body);
  const expected = ours(DOCS.createDigital.response);
  t.same(withoutCreation(created.json()), withoutCreation(expected), 'the documented response, values and all');
  t.ok(Date.parse(created.json().standardBusinessDocumentHeader.documentIdentification.creationDateAndTime), 'creationDateAndTime set');
  const id = create.standardBusinessDocumentHeader.documentIdentification.instanceIdentifier as string;
  const again = await api.call('POST', '/api/messages/out', { payload: create });
  t.same(again.json(), created.json(), 'the same message again: the same answer');
  const changed = structuredClone(create);
  changed.digital.tittel = 'Another title';
  const conflict = isNextMoveError(t, await api.call('POST', '/api/messages/out', { payload: changed }), 409, '/api/messages/out', 'another body under the same id');
  t.match(conflict.message, id);

  // Find and get on the outgoing queue.
  const queue = (await api.call('GET', '/api/messages/out')).json();
  t.same(keys(queue), keys({ ...DOCS.statuses.response }), 'a Spring page, as documented');
  t.same(queue.content.map((m: Json) => m.standardBusinessDocumentHeader.documentIdentification.instanceIdentifier), [id]);
  t.same((await api.call('GET', `/api/messages/out/${id}`)).json(), created.json());
  t.equal((await api.call('GET', '/api/messages/out?serviceIdentifier=DPO')).json().totalElements, 0);

  // Statuses before sending: OPPRETTET.
  const opprettet = (await api.call('GET', '/api/statuses')).json();
  t.same(keys(opprettet), keys(DOCS.statuses.response));
  t.same(keys(opprettet.pageable), keys(DOCS.statuses.response.pageable));
  t.same(opprettet.content.map((s: Json) => s.status), ['OPPRETTET']);
  t.same(keys(opprettet.content[0]), keys(DOCS.statuses.response.content[0]), 'documented status fields');

  // Upload (the documented request, to our message) and send.
  const upload = DOCS.upload.request;
  const put = await api.call('PUT', upload.path.replace('e99e5cd1-74de-4cce-b902-cecdf97dc4f3', id), {
    headers: { 'content-type': upload.headers['Content-Type'], 'content-disposition': upload.headers['Content-Disposition'] },
    payload: upload.body,
  });
  t.equal(put.statusCode, 200, put.body);
  const stored = await db.selectFrom('nextmove_documents').selectAll().where('message_id', '=', id).execute();
  t.equal(stored.length, 1);
  t.notOk(stored[0]!.ciphertext.includes(Buffer.from('gatekeeper')), 'held encrypted, not in plaintext');
  t.match(stored[0], { filename: 'before_the_law.txt', title: 'Before The Law', mime: 'text/plain' });
  const sendMain = await api.call('POST', `/api/messages/out/${id}`);
  t.equal(sendMain.statusCode, 400, 'the hoveddokument kafka_quotes.txt is not uploaded yet');
  t.match(sendMain.json(), { code: 'POSTBUD_INGESTION_NEXTMOVE_MAIN_DOCUMENT_MISSING' });
  t.equal((await api.call('PUT', `/api/messages/out/${id}`, { headers: uploadHeaders('kafka_quotes.txt', 'text/plain', 'Kafka quotes'), payload: 'A book must be the axe for the frozen sea within us.' })).statusCode, 200);
  const sent = await api.call('POST', `/api/messages/out/${id}`);
  t.equal(sent.statusCode, 200, sent.body);
  t.equal((await api.call('POST', `/api/messages/out/${id}`)).statusCode, 200, 'sending again is a no-op');
  t.equal(await db.selectFrom('nextmove_documents').select('seq').where('message_id', '=', id).execute().then((r) => r.length), 0, 'documents dropped once sealed');

  // The same letter as a native one: routing, package, evidence.
  const native = (await api.call('GET', `/v1/messages/${id}`)).json();
  t.match(native, { id, route: 'DIGITAL', status: 'ACCEPTED', securityLevel: 4, openReceipt: true, eFormidlingStatus: 'SENDT' });
  const row = await db.selectFrom('messages').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  t.match(row, { person_id: PERSONS.digital, title: 'Kafka quotes', language: 'en', notifications: { email: { text: create.digital.varsler.epostTekst }, sms: { text: create.digital.varsler.smsTekst } } });
  t.same(row.documents.map((d) => d.name), ['kafka_quotes.txt', 'before_the_law.txt'], 'hoveddokument first');
  t.equal(row.available_at.toISOString(), '2019-03-31T22:00:00.000Z', 'virkningsdato is the start of the day in Oslo');
  t.equal((await db.selectFrom('messages').select('id').execute()).length, 1, 'one letter');
  isNextMoveError(t, await api.call('GET', `/api/messages/out/${id}`), 404, `/api/messages/out/${id}`, 'sent: off the outgoing queue');
  t.same((await api.call('POST', '/api/messages/out', { payload: create })).json(), created.json(), 'creating the sent message again: the same answer');
  t.equal((await api.call('POST', '/api/messages/out', { payload: changed })).statusCode, 409, 'and another body still 409');

  // Upload after send, delete after send.
  const late = isNextMoveError(t, await api.call('PUT', `/api/messages/out/${id}`, { headers: uploadHeaders('late.txt'), payload: 'too late' }), 409, `/api/messages/out/${id}`, 'upload after send');
  t.equal(late.code, 'POSTBUD_INGESTION_NEXTMOVE_ALREADY_SENT');
  isNextMoveError(t, await api.call('DELETE', `/api/messages/out/${id}`), 409, `/api/messages/out/${id}`, 'delete after send');

  // Delivered, then opened: LEVERT and LEST from the evidence log.
  const hub = storageContext(api.svc.deps).hub;
  await appendEvent(db, hub, { messageId: id, senderOrgnr: SENDER, type: 'DELIVERED', data: {} });
  await appendEvent(db, hub, { messageId: id, senderOrgnr: SENDER, type: 'NOTIFIED', data: { channel: 'email' } });
  await appendEvent(db, hub, { messageId: id, senderOrgnr: SENDER, type: 'OPENED', data: {} });
  const mine = (await api.call('GET', `/api/statuses/${id}`)).json();
  t.same(mine.content.map((s: Json) => s.status), ['OPPRETTET', 'SENDT', 'LEVERT', 'LEST'], 'each status once, in order');
  t.same(mine.content.map((s: Json) => s.description), ['Opprettet', 'Sendt', 'Levert', 'Lest']);
  t.match(mine.content[0], { messageId: id, conversationId: create.standardBusinessDocumentHeader.businessScope.scope[0].instanceIdentifier, convId: Number });
  const peek = await api.call('GET', '/api/statuses/peek');
  t.same(keys(peek.json()), keys(DOCS.peek.response), 'peek: the documented fields');
  t.match(peek.json(), { status: 'LEST', messageId: id });

  // Create (Example 4: a DPI print message) to a person without a mailbox, upload, send.
  const print = ours(DOCS.createPrint.request, PERSONS.noMailbox);
  const printCreated = await api.call('POST', '/api/messages/out', { payload: print });
  t.equal(printCreated.statusCode, 200, printCreated.body);
  t.same(withoutCreation(printCreated.json()), withoutCreation(ours(DOCS.createPrint.response, PERSONS.noMailbox)));
  const printId = print.standardBusinessDocumentHeader.documentIdentification.instanceIdentifier as string;
  t.equal((await api.call('PUT', `/api/messages/out/${printId}`, { headers: uploadHeaders('kafka_quotes.txt', 'text/plain', 'Vedtak'), payload: 'Paper, please.' })).statusCode, 200);
  t.equal((await api.call('POST', `/api/messages/out/${printId}`)).statusCode, 200);
  const printed = await db.selectFrom('messages').selectAll().where('id', '=', printId).executeTakeFirstOrThrow();
  t.match(printed, {
    route: 'PRINT',
    title: 'Vedtak',
    print: {
      recipient: { name: 'Ola Nordmann', addressLines: ['Langtoppilia 1'], postalCode: '9999', city: 'FJELL', country: 'NO' },
      returnAddress: { name: 'Fjellheimen kommune' },
      color: 'COLOR',
      class: 'A',
      returnHandling: 'RETURN',
    },
  });

  // Status search and paging as documented.
  const search = (await api.call('GET', `/api/statuses?messageId=${printId}&status=SENDT`)).json();
  t.same(search.content.map((s: Json) => [s.messageId, s.status]), [[printId, 'SENDT']]);
  const all = (await api.call('GET', '/api/statuses')).json();
  t.equal(all.totalElements, 6);
  const page = (await api.call('GET', '/api/statuses?page=2&size=2')).json();
  t.match(page, { number: 2, size: 2, totalElements: 6, totalPages: 3, first: false, last: true, numberOfElements: 2, pageable: { offset: 4, pageNumber: 2, pageSize: 2 } });
  const past = (await api.call('GET', '/api/statuses?page=9&size=2')).json();
  t.match(past, { totalElements: 6, numberOfElements: 0, empty: true });
  const desc = (await api.call('GET', '/api/statuses?sort=lastUpdate,desc')).json();
  t.equal(desc.content[0].messageId, printId, 'sorted by lastUpdate descending');
  isNextMoveError(t, await api.call('GET', '/api/statuses?sort=secret,desc'), 400, '/api/statuses', 'unknown sort property');
  const range = (await api.call('GET', `/api/statuses?fromDateTime=2000-01-01T00:00:00Z&toDateTime=2001-01-01T00:00:00Z`)).json();
  t.equal(range.totalElements, 0, 'time range');

  // Conversations by id and by messageId.
  const conv = (await api.call('GET', `/api/conversations/messageId/${id}`)).json();
  t.same(keys(conv), keys(DOCS.conversationByMessageId.response), 'the documented conversation fields');
  t.match(conv, { messageId: id, senderIdentifier: `0192:${SENDER}`, receiverIdentifier: PERSONS.digital, processIdentifier: 'urn:no:difi:profile:digitalpost:info:ver1.0', direction: 'OUTGOING', serviceIdentifier: 'DPI', finished: true, messageTitle: 'Kafka quotes' });
  t.same(conv.messageStatuses.map((s: Json) => s.status), ['OPPRETTET', 'SENDT', 'LEVERT', 'LEST']);
  t.same((await api.call('GET', `/api/conversations/${conv.id}`)).json(), conv);
  t.equal((await api.call('GET', '/api/conversations')).json().totalElements, 2);
  t.equal((await api.call('GET', '/api/conversations?serviceIdentifier=DPO')).json().totalElements, 0);
  const missing = isNextMoveError(t, await api.call('GET', '/api/conversations/999999'), 404, '/api/conversations/999999', 'conversation not found');
  t.equal(missing.exception, DOCS.conversationNotFound.exception, 'the documented exception name');
  t.equal(missing.message, 'Conversation with id = 999999 was not found');

  // Another sender sees none of it and cannot touch it.
  const other = await api.svc.token({ org: OTHER_SENDER, scope: SCOPES.send });
  t.equal((await api.call('GET', '/api/statuses', { token: other })).json().totalElements, 0);
  t.equal((await api.call('GET', `/api/conversations/messageId/${id}`, { token: other })).statusCode, 404);
  t.equal((await api.call('GET', `/api/conversations/${conv.id}`, { token: other })).statusCode, 404);
  t.equal((await api.call('POST', `/api/messages/out/${id}`, { token: other })).statusCode, 404);
  t.equal((await api.call('GET', '/api/statuses/peek', { token: other })).statusCode, 204, 'peek with nothing: 204');
});

t.test('multipart: create and send in one request, idempotent by messageId', async (t) => {
  const api = await setup(t);
  const db = api.svc.deps.db.kysely;
  const sbd = ours(DOCS.createDigital.request);
  sbd.digital.hoveddokument = 'before_the_law.txt';
  const part = DOCS.multipart.request.parts[1];
  const body = multipartBody(sbd, [{ name: part.name, filename: part.filename, type: part.contentType, content: Buffer.from(part.body) }, { name: 'Vedlegg', filename: 'vedlegg.pdf', type: 'application/pdf', content: PDF(2000) }]);
  const res = await api.call('POST', '/api/messages/out/multipart', { headers: { 'content-type': body.contentType }, payload: body.payload });
  t.equal(res.statusCode, 200, res.body);
  const id = sbd.standardBusinessDocumentHeader.documentIdentification.instanceIdentifier as string;
  t.same(withoutCreation(res.json()), withoutCreation({ ...ours(DOCS.createDigital.response), digital: { ...ours(DOCS.createDigital.response).digital, hoveddokument: 'before_the_law.txt' } }));
  const row = await db.selectFrom('messages').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  t.same(row.documents.map((d) => d.name), ['before_the_law.txt', 'vedlegg.pdf']);
  t.same((await api.call('GET', `/api/statuses/${id}`)).json().content.map((s: Json) => s.status), ['OPPRETTET', 'SENDT']);

  const replay = await api.call('POST', '/api/messages/out/multipart', { headers: { 'content-type': body.contentType }, payload: body.payload });
  t.equal(replay.statusCode, 200, 'the same multipart again');
  t.same(replay.json(), res.json());
  const other = multipartBody(sbd, [{ name: part.name, filename: part.filename, type: part.contentType, content: Buffer.from('another text') }]);
  t.equal((await api.call('POST', '/api/messages/out/multipart', { headers: { 'content-type': other.contentType }, payload: other.payload })).statusCode, 409, 'other documents under the same messageId');
  t.equal((await db.selectFrom('messages').select('id').execute()).length, 1, 'still one letter');

  // A refused multipart leaves nothing: a mismatched document, a reserved person.
  const bad = ours(DOCS.createDigital.request);
  bad.standardBusinessDocumentHeader.documentIdentification.instanceIdentifier = '1b7b7d7e-0d6c-4d53-9a4e-5a3b1d0e9f11';
  bad.digital.hoveddokument = 'a.pdf';
  const mismatch = multipartBody(bad, [{ name: 'A', filename: 'a.pdf', type: 'application/pdf', content: Buffer.from('not a pdf') }]);
  const refused = await api.call('POST', '/api/messages/out/multipart', { headers: { 'content-type': mismatch.contentType }, payload: mismatch.payload });
  t.equal(refused.statusCode, 422, refused.body);
  t.match(refused.json(), { code: 'POSTBUD_INGESTION_DOCUMENT_CONTENT_MISMATCH' });
  const reserved = ours(DOCS.createDigital.request, PERSONS.reserved);
  reserved.standardBusinessDocumentHeader.documentIdentification.instanceIdentifier = '2b7b7d7e-0d6c-4d53-9a4e-5a3b1d0e9f12';
  reserved.digital.hoveddokument = 'a.pdf';
  const toReserved = multipartBody(reserved, [{ name: 'A', filename: 'a.pdf', type: 'application/pdf', content: PDF(500) }]);
  const r2 = await api.call('POST', '/api/messages/out/multipart', { headers: { 'content-type': toReserved.contentType }, payload: toReserved.payload });
  t.equal(r2.statusCode, 422, r2.body);
  t.match(r2.json(), { code: 'POSTBUD_INGESTION_RECIPIENT_RESERVED', exception: 'POSTBUD_INGESTION_RECIPIENT_RESERVED' });
  t.equal((await db.selectFrom('nextmove_messages').select('message_id').execute()).length, 1, 'no half-created message');
  t.equal((await db.selectFrom('nextmove_statuses').select('id').execute()).length, 2, 'and no status of one');
  const noSbd = multipartBody(undefined, []);
  t.equal((await api.call('POST', '/api/messages/out/multipart', { headers: { 'content-type': noSbd.contentType }, payload: noSbd.payload.toString().replace('name=sbd', 'name=other') })).statusCode, 400);
  t.equal((await api.call('POST', '/api/messages/out/multipart', { headers: { 'content-type': 'application/json' }, payload: '{}' })).statusCode, 415);
});

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
