import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import { BEARER_SECURITY, clientOf, requireClient } from '../../../shared/auth/guards.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { ALLOWED_MIME_TYPES } from '../documents.js';
import { DOCUMENT_FIELD, submitLetter } from '../intake.js';
import { listMessages, messageStatus, type MessageStatus as Status } from '../status.js';
import { ingestionProblems } from '../problems.js';
import type { IngestionRouteOptions } from './context.js';
import { DateTime, errors, LETTER_EXAMPLE, MessagePartSchema, MessageStatus, Orgnr, SubmitResponse, Uuid } from './schemas.js';

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

const MultipartBody = Type.Object(
  {
    message: MessagePartSchema,
    [DOCUMENT_FIELD]: Type.Array(Type.String({ format: 'binary', maxLength: 100 * 1024 * 1024 }), {
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
      onRequest: requireClient(SCOPES.send),
      config: { unsupportedMediaType: ingestionProblems.MULTIPART_REQUIRED },
      // The body is a stream read part by part (never buffered); the schema documents it and
      // the handler validates each part itself.
      validatorCompiler: () => () => true,
      schema: {
        summary: 'Send a letter',
        description:
          'DESIGN flow 2-4: multipart/form-data with a JSON `message` part and the documents, streamed into a sealed package. ' +
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
      const result = await submitLetter(opts, request, client.org);
      if (result.replayed) reply.header('idempotent-replayed', 'true');
      reply.header('location', `/v1/messages/${String(result.body.id)}`);
      return reply.code(result.status).send(result.body);
    },
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
        summary: 'Your letters, oldest first, by page',
        tags: ['messages'],
        security: BEARER_SECURITY,
        querystring: Type.Object(
          {
            status: Type.Optional(MessageStatus),
            since: Type.Optional(Type.String({ format: 'date-time', maxLength: 40, description: 'Only letters whose status changed at or after this' })),
            cursor: Type.Optional(Type.String({ maxLength: 512 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: MessageList, ...errors() },
      },
    },
    async (request) => {
      const q = request.query as { status?: Status; since?: string; cursor?: string; limit?: number };
      return listMessages(deps.db.kysely, clientOf(request).org, {
        limit: q.limit ?? 50,
        ...(q.status ? { status: q.status } : {}),
        ...(q.since ? { since: new Date(q.since) } : {}),
        ...(q.cursor ? { cursor: q.cursor } : {}),
      });
    },
  );
};

export default messageRoutes;
