import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import { BEARER_SECURITY, clientOf, requireClient } from '../../../shared/auth/guards.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { ALLOWED_MIME_TYPES } from '../documents.js';
import { DOCUMENT_FIELD, submitLetter } from '../intake.js';
import { admitLetter, leaveAdmission } from '../intake/admit-hook.js';
import { LetterPartSchema, submitBatch } from '../bulk.js';
import { cancelMessage } from '../cancel.js';
import { listMessages, messageStatus, type MessageQuery, type MessageStatus as Status } from '../status.js';
import { ingestionProblems } from '../problems.js';
import type { IngestionRouteOptions } from './context.js';
import { DateTime, DocumentFile, errors, LETTER_EXAMPLE, MessagePartSchema, MessageStatus, Orgnr, ProblemSchema, SubmitResponse, Uuid } from './schemas.js';

const Summary = {
  id: Uuid,
  senderReference: Type.Union([Type.String(), Type.Null()]),
  route: Type.Union([Type.Literal('DIGITAL'), Type.Literal('PRINT')]),
  provider: Type.Object({ orgnr: Orgnr, name: Type.Union([Type.String(), Type.Null()]) }),
  status: MessageStatus,
  eFormidlingStatus: Type.String({ description: 'OPPRETTET/SENDT/MOTTATT/LEVERT/LEST/FEIL/LEVETID_UTLOPT' }),
  statusAt: DateTime,
  createdAt: DateTime,
  availableAt: DateTime,
  securityLevel: Type.Integer(),
  openReceipt: Type.Boolean(),
};

const TimelineEvent = Type.Object({
  seq: Type.Integer(),
  type: Type.String({ description: 'Evidence event type (SEALED, DELIVERED, NOTIFIED, OPENED, ERROR, ...)' }),
  at: DateTime,
  status: Type.Optional(MessageStatus),
  data: Type.Record(Type.String(), Type.Unknown()),
  hash: Type.String({ description: 'SHA-256 of the event in the hash chain' }),
});

const MessageStatusResponse = Type.Object({ ...Summary, timeline: Type.Array(TimelineEvent) });
const MessageList = Type.Object({ items: Type.Array(Type.Object(Summary)), nextCursor: Type.Union([Type.String(), Type.Null()]) });

const CancelResponse = Type.Object({
  id: Uuid,
  status: Type.Literal('CANCELLED'),
  cancelledAt: DateTime,
  receiptId: Type.Union([Uuid, Type.Null()], { description: 'The CANCELLED receipt (pull it from /v1/receipts)' }),
});

const BatchResult = Type.Object({
  index: Type.Integer({ description: 'Position of the letter in the batch, from 0' }),
  idempotencyKey: Type.String({ maxLength: 255 }),
  status: Type.Integer({ description: 'What POST /v1/messages would have answered for this letter alone (201, or the problem status)' }),
  replayed: Type.Optional(Type.Boolean({ description: 'The stored answer of an earlier request with this key' })),
  message: Type.Optional(SubmitResponse),
  problem: Type.Optional(ProblemSchema),
});
const BatchResponse = Type.Object({
  letters: Type.Integer(),
  accepted: Type.Integer(),
  failed: Type.Integer(),
  results: Type.Array(BatchResult),
});
const BatchBody = Type.Object(
  {
    // Bounds: BATCH_MAX_LETTERS is at most 1000, each letter at most 1001 documents.
    letter: Type.Array(LetterPartSchema, { minItems: 1, maxItems: 1000 }),
    documents: Type.Array(DocumentFile(), {
      maxItems: 1000 * 1001,
      description: "Each letter's document file parts, in its declared order, right after its `letter` part",
    }),
  },
  {
    description: 'multipart/form-data: for each letter a `letter` field part (JSON {idempotencyKey, message}), then its documents',
    examples: [{ letter: [{ idempotencyKey: 'batch-2026-03-02-0001', message: LETTER_EXAMPLE }], documents: [''] }],
  },
);

const TimeFilter = (description: string) => Type.Optional(Type.String({ format: 'date-time', maxLength: 64, description }));

const MultipartBody = Type.Object(
  {
    message: MessagePartSchema,
    [DOCUMENT_FIELD]: Type.Array(DocumentFile(), {
      minItems: 1,
      maxItems: 1001,
      description: `One file part named \`${DOCUMENT_FIELD}\` per declared document, in the declared order, each with filename = the document's name. Allowed types: ${ALLOWED_MIME_TYPES.join(', ')}`,
    }),
  },
  {
    title: 'LetterSubmission',
    description: `multipart/form-data: first the \`message\` part (JSON), then one file part named \`${DOCUMENT_FIELD}\` per document`,
    examples: [{ message: LETTER_EXAMPLE, [DOCUMENT_FIELD]: [''] }],
  },
);

const messageRoutes: FastifyPluginAsync<IngestionRouteOptions> = async (app, opts) => {
  const { deps } = opts;

  app.post(
    '/v1/messages',
    {
      // Admission first: a refusal under overload costs no token check and reads no body.
      onRequest: [admitLetter(opts.intake), requireClient(SCOPES.send)],
      config: { unsupportedMediaType: ingestionProblems.MULTIPART_REQUIRED },
      // The body is read part by part (a small letter's documents whole, a larger one's
      // streamed; docs/ingestion.md); the schema documents it and the handler validates each
      // part itself.
      validatorCompiler: () => () => true,
      schema: {
        summary: 'Send a letter',
        description:
          'DESIGN flow 2-4: multipart/form-data with a JSON `message` part and the documents, sealed into an encrypted package (a body up to INTAKE_IN_MEMORY_MAX_BYTES is read whole, a larger one streamed). ' +
          'Idempotency-Key is required: the same key and request give the same answer (for at least 24 h), the same key with another request 422, ' +
          'a request with the key still being committed 409. Routing: DIGITAL to the active mailbox, else PRINT when print details are given, else 422. ' +
          'Letters arriving together are committed together (group commit); 201 only after the commit. An upload that stalls is answered 408; ' +
          'more uploads at once than a client may have, 429; an intake at capacity, 503 with Retry-After.',
        tags: ['messages'],
        security: BEARER_SECURITY,
        consumes: ['multipart/form-data'],
        headers: Type.Object({ 'idempotency-key': Type.String({ minLength: 1, maxLength: 255, description: 'Your unique key for this letter, e.g. a UUID' }) }),
        body: MultipartBody,
        response: { 201: SubmitResponse, ...errors(408, 409, 413, 415, 422, 429, 503) },
        responseHeaders: {
          201: {
            Location: { description: 'The letter: GET it for its status and timeline', type: 'string', maxLength: 64, examples: ['/v1/messages/0b8f2c4e-6a1d-4e3b-9c5f-7d2a1b3c4d5e'] },
            'Idempotent-Replayed': { description: '`true` when this is the stored answer to an earlier request with the same Idempotency-Key', type: 'string', enum: ['true'] },
          },
          409: { 'Retry-After': { description: 'A request with this Idempotency-Key is in progress: seconds to wait', type: 'integer', minimum: 0, maximum: 3600 } },
        },
      },
    },
    async (request, reply) => {
      const client = clientOf(request);
      let result;
      try {
        result = await submitLetter(opts, request, client.org);
      } finally {
        leaveAdmission(request);
      }
      if (result.replayed) reply.header('idempotent-replayed', 'true');
      reply.header('location', `/v1/messages/${String(result.body.id)}`);
      return reply.code(result.status).send(result.body);
    },
  );

  app.post(
    '/v1/messages/batch',
    {
      onRequest: requireClient(SCOPES.send),
      // Read part by part like the single send; the handler validates each part.
      validatorCompiler: () => () => true,
      schema: {
        summary: 'Send many letters in one request',
        description:
          'For each letter a `letter` field part `{idempotencyKey, message}` (message as in POST /v1/messages), then its documents as file parts in the declared order. ' +
          'Up to BATCH_MAX_LETTERS letters and BATCH_MAX_BYTES of documents. A batch that is malformed as a whole (400/413/415) makes no letter; otherwise every letter is submitted ' +
          'exactly as a single send would be, with its own idempotency key, and gets its own result (201 with the letter, or its problem).',
        tags: ['messages'],
        security: BEARER_SECURITY,
        consumes: ['multipart/form-data'],
        body: BatchBody,
        response: { 200: BatchResponse, ...errors(413, 415) },
      },
    },
    async (request) => submitBatch(opts, request, clientOf(request).org),
  );

  app.get(
    '/v1/messages/:id',
    {
      onRequest: requireClient(SCOPES.send),
      schema: {
        summary: 'Status and timeline of one of your letters',
        tags: ['messages'],
        security: BEARER_SECURITY,
        params: Type.Object({ id: Uuid }),
        response: { 200: MessageStatusResponse, ...errors(404) },
      },
    },
    async (request) => messageStatus(deps.db.kysely, clientOf(request).org, (request.params as { id: string }).id),
  );

  app.get(
    '/v1/messages',
    {
      onRequest: requireClient(SCOPES.send),
      schema: {
        summary: 'Your letters, oldest first, by page; find one by senderReference, filter by status and time range',
        tags: ['messages'],
        security: BEARER_SECURITY,
        querystring: Type.Object(
          {
            status: Type.Optional(MessageStatus),
            senderReference: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Your own reference: finds the one letter that has it' })),
            since: TimeFilter('Only letters whose status changed at or after this'),
            until: TimeFilter('Only letters whose status changed before this'),
            createdFrom: TimeFilter('Only letters accepted at or after this'),
            createdTo: TimeFilter('Only letters accepted before this'),
            cursor: Type.Optional(Type.String({ maxLength: 512 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: MessageList, ...errors() },
      },
    },
    async (request) => {
      const q = request.query as { status?: Status; senderReference?: string; since?: string; until?: string; createdFrom?: string; createdTo?: string; cursor?: string; limit?: number };
      const query: MessageQuery = { limit: q.limit ?? 50 };
      if (q.status) query.status = q.status;
      if (q.senderReference !== undefined) query.senderReference = q.senderReference;
      if (q.cursor) query.cursor = q.cursor;
      for (const k of ['since', 'until', 'createdFrom', 'createdTo'] as const) if (q[k]) query[k] = new Date(q[k]);
      return listMessages(deps.db.kysely, clientOf(request).org, query);
    },
  );

  app.delete(
    '/v1/messages/:id',
    {
      onRequest: requireClient(SCOPES.send),
      schema: {
        summary: 'Cancel one of your letters before any provider has acknowledged it',
        description:
          'Withdraws the pending delivery (gone from the provider listing, package purged at once), appends a CANCELLED event and gives you a CANCELLED receipt. ' +
          'After a provider acknowledged the letter: 409 ingestion/already-delivered. A provider acknowledging at the same moment: exactly one of the two wins. Cancelling again answers the same.',
        tags: ['messages'],
        security: BEARER_SECURITY,
        params: Type.Object({ id: Uuid }),
        response: { 200: CancelResponse, ...errors(404, 409) },
      },
    },
    async (request, reply) => {
      const { replayed, ...body } = await cancelMessage(deps.db.kysely, opts.storage, clientOf(request).org, (request.params as { id: string }).id, deps.clock?.() ?? new Date());
      if (replayed) reply.header('idempotent-replayed', 'true');
      request.log.info({ messageId: body.id, replayed }, 'letter cancelled');
      return body;
    },
  );
};

export default messageRoutes;
