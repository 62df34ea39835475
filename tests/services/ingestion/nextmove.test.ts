import { createHash, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import t from 'tap';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { appendEvent } from '../../../shared/evidence/events.js';
import { storageContext } from '../../../shared/storage/context.js';
import { DOCS, isNextMoveError, keys, multipartBody, ours, setup, uploadHeaders, withoutCreation, type Json } from './nextmove-fixtures.js';
import { OTHER_SENDER, PDF, PERSONS, SENDER } from './fixtures.js';

/**
 * The next-move API against the documentation's own DPI examples
 * (tests/fixtures/nextmove/restdocs-dpi.json, copied from felleslosninger/docs), with our seeded
 * sender and persons substituted: capabilities, the digital and print messages, upload, send,
 * statuses, peek, conversations, multipart. Refusals and subscriptions: nextmove-refusals.test.ts.
 */

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

t.test('a send is sealed whole when small and streamed when not: the same documents sealed, the same refusal, nothing half-sent', async (t) => {
  const outcomes: Json[] = [];
  for (const [way, env] of [['whole', {}], ['streamed', { INTAKE_IN_MEMORY_MAX_BYTES: '0' }]] as const) {
    await t.test(way, async (t) => {
      const api = await setup(t, env);
      const db = api.svc.deps.db.kysely;
      const letter = async (person: string) => {
        const create = ours(DOCS.createDigital.request, person);
        const id = randomUUID();
        create.standardBusinessDocumentHeader.documentIdentification.instanceIdentifier = id;
        t.equal((await api.call('POST', '/api/messages/out', { payload: create })).statusCode, 200);
        const main = Buffer.from(`The main document of ${way}, æøå.`);
        const other = Buffer.from('Before the law stands a doorkeeper.');
        t.equal((await api.call('PUT', `/api/messages/out/${id}`, { headers: uploadHeaders('kafka_quotes.txt', 'text/plain', 'Kafka quotes'), payload: main })).statusCode, 200);
        t.equal((await api.call('PUT', `/api/messages/out/${id}`, { headers: uploadHeaders('before_the_law.txt'), payload: other })).statusCode, 200);
        return { id, sha256: [main, other].map((b) => createHash('sha256').update(b).digest('hex')) };
      };

      const ok = await letter(PERSONS.digital);
      const sent = await api.call('POST', `/api/messages/out/${ok.id}`);
      t.equal(sent.statusCode, 200, sent.body);
      const row = await db.selectFrom('messages').select(['documents', 'route']).where('id', '=', ok.id).executeTakeFirstOrThrow();
      t.same(row.documents.map((d) => d.sha256), ok.sha256, 'the uploaded bytes are what was sealed, hoveddokument first');
      t.equal(row.route, 'DIGITAL');
      t.equal((await db.selectFrom('deliveries').select('id').where('message_id', '=', ok.id).execute()).length, 1, 'one delivery');

      const refused = await letter(PERSONS.digital);
      await sql`update persons set reserved = true, reserved_at = now() where person_id = ${PERSONS.digital}`.execute(db);
      t.teardown(() => sql`update persons set reserved = false, reserved_at = null where person_id = ${PERSONS.digital}`.execute(db));
      const res = await api.call('POST', `/api/messages/out/${refused.id}`);
      outcomes.push({ status: res.statusCode, code: res.json().code });
      t.ok(res.statusCode >= 400 && res.statusCode < 500, `a recipient reserved since the message was created is the sender's problem (${res.statusCode})`);
      t.equal((await api.call('GET', `/api/messages/out/${refused.id}`)).statusCode, 200, 'the message stays on the outgoing queue');
      t.equal((await db.selectFrom('nextmove_documents').select('seq').where('message_id', '=', refused.id).execute()).length, 2, 'its documents are kept for another try');
      t.equal((await db.selectFrom('messages').select('id').where('id', '=', refused.id).execute()).length, 0, 'no letter written');
    });
  }
  t.equal(outcomes.length, 2);
  t.same(outcomes[0], outcomes[1], 'both ways refuse the reserved recipient with the same status and code');
});

t.test('a send with Content-Type application/json and no body, as Spring clients send it, is a send; a malformed body is still refused', async (t) => {
  const api = await setup(t);
  const ready = async () => {
    const create = ours(DOCS.createDigital.request);
    const id = randomUUID();
    create.standardBusinessDocumentHeader.documentIdentification.instanceIdentifier = id;
    t.equal((await api.call('POST', '/api/messages/out', { payload: create })).statusCode, 200);
    t.equal((await api.call('PUT', `/api/messages/out/${id}`, { headers: uploadHeaders('kafka_quotes.txt', 'text/plain', 'Kafka quotes'), payload: 'A book must be the axe.' })).statusCode, 200);
    return id;
  };
  for (const type of ['application/json', 'application/json;charset=UTF-8']) {
    const id = await ready();
    const res = await api.call('POST', `/api/messages/out/${id}`, { headers: { 'content-type': type, 'content-length': '0' }, payload: '' });
    t.equal(res.statusCode, 200, `${type}, empty: sent (${res.body})`);
    t.match((await api.call('GET', `/v1/messages/${id}`)).json(), { id, eFormidlingStatus: 'SENDT' });
  }
  const id = await ready();
  const bad = isNextMoveError(t, await api.call('POST', `/api/messages/out/${id}`, { headers: { 'content-type': 'application/json' }, payload: '{"oops' }), 400, `/api/messages/out/${id}`, 'a cut-off JSON body');
  t.equal(bad.exception, 'POSTBUD_MALFORMED_BODY');
  const poisoned = await api.call('POST', `/api/messages/out/${id}`, { headers: { 'content-type': 'application/json' }, payload: '{"__proto__":{"x":1}}' });
  t.equal(poisoned.statusCode, 400, 'a prototype-poisoning body is refused as on every other route');
  t.equal((await api.call('GET', `/api/messages/out/${id}`)).statusCode, 200, 'refused sends leave the message unsent');
  t.equal((await api.call('POST', `/api/messages/out/${id}`, { headers: { 'content-type': 'application/json' }, payload: '{}' })).statusCode, 200, 'an empty object is no body either');
});
