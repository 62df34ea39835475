import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { Compile } from 'typebox/compile';
import { BEARER_SECURITY, clientOf, requireClient } from '../../../shared/auth/guards.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { Problem } from '../../../shared/errors/problem.js';
import { isUuid } from '../../../shared/ids/uuid.js';
import { ALLOWED_MIME_TYPES } from '../documents.js';
import { ingestionProblems } from '../problems.js';
import { nextMoveErrors, violations } from '../nextmove/errors.js';
import { check } from '../nextmove/input.js';
import { createMessage, deleteMessage, findOutgoing, getMessage, sbdHash, sendMessage, sentDocuments, uploadDocument, type NextMoveRow, type Upload } from '../nextmove/messages.js';
import { pageOf, PageOf, PagingQuery } from '../nextmove/paging.js';
import { parseSbd, Sbd, SBD_EXAMPLE, type SbdBody } from '../nextmove/sbd.js';
import { DocumentFile } from './schemas.js';
import type { IngestionRouteOptions } from './context.js';

const sbdValidator = Compile(Sbd);
const MessageIdParams = Type.Object({ messageId: Type.String({ maxLength: 64, description: 'The messageId (a UUID)' }) });
const Empty = Type.Null({ description: 'No body' });

const messageId = (request: FastifyRequest) => {
  const id: string = (request.params as { messageId: string }).messageId;
  if (!isUuid(id)) throw new Problem(ingestionProblems.MESSAGE_NOT_FOUND, `Message with messageId = ${String(id).slice(0, 64)} was not found`);
  return id.toLowerCase();
};

/** Content-Disposition parameters (quoted, unquoted with spaces as in next-move's examples, or RFC 5987 filename*). */
export function dispositionParams(header: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /;\s*([A-Za-z*]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)/g;
  for (const m of `;${header.replace(/^[^;]*/, '')}`.matchAll(re)) {
    const key = m[1]!.toLowerCase();
    let value = m[2]!.trim();
    if (value.startsWith('"')) value = value.slice(1, -1).replace(/\\(.)/g, '$1');
    if (key.endsWith('*')) {
      const ext = /^[^']*'[^']*'(.*)$/.exec(value);
      try {
        out[key.slice(0, -1)] = decodeURIComponent(ext ? ext[1]! : value);
      } catch {
        /* malformed percent-encoding: ignored */
      }
    } else if (!Object.hasOwn(out, key)) out[key] = value;
  }
  return out;
}

const mimeOf = (contentType: string | undefined) => (contentType ?? '').split(';')[0]!.trim().toLowerCase();

const nextMoveMessageRoutes: FastifyPluginAsync<IngestionRouteOptions> = async (app, opts) => {
  const { deps } = opts;
  const db = deps.db.kysely;
  const now = () => deps.clock?.() ?? new Date();
  const parsedFor = (org: string) => (row: NextMoveRow) => parseSbd(row.sbd, org, now());

  /** Checks an SBD (schema, then parseSbd) and creates the message, or finds the same one again. */
  const create = async (org: string, body: SbdBody) => {
    const parsed = parseSbd(body, org, now());
    return createMessage(opts, org, parsed, sbdHash(body));
  };

  app.post(
    '/messages/out',
    {
      onRequest: requireClient(SCOPES.send),
      schema: {
        summary: 'Create a DPI message (next-move)',
        description:
          'An SBD with a `digital` or `print` business message. The sender (optional) must be 0192:<the token organisation>; the receiver a person. ' +
          'instanceIdentifier is the messageId: the same messageId with the same SBD answers the stored message again, with a different SBD 409. ' +
          'Other message types (arkivmelding, digital_dpv, innsynskrav, ...) are refused as out of scope. Then upload the documents and send.',
        tags: ['next-move'],
        security: BEARER_SECURITY,
        body: Sbd,
        response: { 200: Sbd, ...nextMoveErrors(409) },
      },
    },
    async (request) => {
      const { row, created } = await create(clientOf(request).org, request.body as SbdBody);
      if (created) request.log.info({ messageId: row.message_id, type: row.type }, 'next-move message created');
      return row.sbd;
    },
  );

  app.get(
    '/messages/out',
    {
      onRequest: requireClient(SCOPES.send),
      schema: {
        summary: 'Find outgoing messages not yet sent (next-move)',
        tags: ['next-move'],
        security: BEARER_SECURITY,
        querystring: Type.Object(
          {
            conversationId: Type.Optional(Type.String({ maxLength: 255 })),
            messageId: Type.Optional(Type.String({ maxLength: 64 })),
            processIdentifier: Type.Optional(Type.String({ maxLength: 255 })),
            receiverIdentifier: Type.Optional(Type.String({ maxLength: 64 })),
            senderIdentifier: Type.Optional(Type.String({ maxLength: 64 })),
            serviceIdentifier: Type.Optional(Type.String({ maxLength: 16 })),
            ...PagingQuery,
          },
          { additionalProperties: false },
        ),
        response: { 200: PageOf(Sbd, 'A page of SBDs'), ...nextMoveErrors() },
      },
    },
    async (request) => {
      const q = request.query as Parameters<typeof findOutgoing>[2];
      const { items, total } = await findOutgoing(db, clientOf(request).org, q);
      return pageOf(items, total, q);
    },
  );

  app.get(
    '/messages/out/:messageId',
    {
      onRequest: requireClient(SCOPES.send),
      schema: {
        summary: 'Get an outgoing message not yet sent (next-move)',
        tags: ['next-move'],
        security: BEARER_SECURITY,
        params: MessageIdParams,
        response: { 200: Sbd, ...nextMoveErrors(404) },
      },
    },
    async (request) => {
      const id = messageId(request);
      const row = await getMessage(db, clientOf(request).org, id);
      if (row.state === 'SENDT') throw new Problem(ingestionProblems.MESSAGE_NOT_FOUND, `Message with messageId = ${id} has been sent and left the outgoing queue; see /api/conversations/messageId/${id}`);
      return row.sbd;
    },
  );

  // The send has no body. A client that puts `Content-Type: application/json` on every POST
  // (Spring's RestTemplate and WebClient do) sends it with an empty body, which the integration
  // point, ignoring the body, takes; so does this route. A non-empty body is parsed as anywhere.
  await app.register(async (send) => {
    const json = send.getDefaultJsonParser('error', 'error');
    send.removeContentTypeParser('application/json');
    send.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => (body === '' ? done(null, undefined) : json(request, body as string, done)));
    send.post(
      '/messages/out/:messageId',
      {
        onRequest: requireClient(SCOPES.send),
        schema: {
          summary: 'Send a message (next-move)',
          description:
            'Hands the message with its uploaded documents (hoveddokument first) to the same intake as POST /v1/messages: routing, sealing, delivery, alerts, evidence. ' +
            'Sending again is a no-op. Refused (and left unsent) without documents, without the main document, or when the intake refuses the letter.',
          tags: ['next-move'],
          security: BEARER_SECURITY,
          params: MessageIdParams,
          response: { 200: Empty, ...nextMoveErrors(404, 409, 413, 415, 422) },
        },
      },
      async (request, reply) => {
        const org = clientOf(request).org;
        await sendMessage(opts, org, messageId(request), parsedFor(org), request.log);
        return reply.code(200).send();
      },
    );
  });

  app.delete(
    '/messages/out/:messageId',
    {
      onRequest: requireClient(SCOPES.send),
      schema: {
        summary: 'Delete a message not yet sent (next-move)',
        tags: ['next-move'],
        security: BEARER_SECURITY,
        params: MessageIdParams,
        response: { 200: Empty, ...nextMoveErrors(404, 409) },
      },
    },
    async (request, reply) => {
      await deleteMessage(db, clientOf(request).org, messageId(request));
      return reply.code(200).send();
    },
  );

  // The upload takes any content type as raw bytes (its own parser, in its own scope).
  await app.register(async (upload) => {
    upload.removeAllContentTypeParsers();
    upload.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: deps.config.MESSAGE_MAX_BYTES }, (_request, body, done) => done(null, body));
    upload.put(
      '/messages/out/:messageId',
      {
        onRequest: requireClient(SCOPES.send),
        schema: {
          summary: 'Upload a document of a message (next-move)',
          description:
            'The body is the document; Content-Type its type (allowed: ' +
            ALLOWED_MIME_TYPES.join(', ') +
            '), Content-Disposition gives `filename` and optionally `name` (the title; or ?title=). Repeat for each document. ' +
            'Held encrypted under a per-message key until sent. The same file again is a no-op; a different one under the same name 409; after sending 409.',
          tags: ['next-move'],
          security: BEARER_SECURITY,
          consumes: ALLOWED_MIME_TYPES,
          params: MessageIdParams,
          querystring: Type.Object({ title: Type.Optional(Type.String({ maxLength: 255 })) }, { additionalProperties: false }),
          headers: Type.Object({ 'content-disposition': Type.Optional(Type.String({ maxLength: 1024 })) }),
          body: DocumentFile(),
          response: { 200: Empty, ...nextMoveErrors(404, 409, 413, 415, 422) },
        },
        // The body is raw bytes (not JSON Schema material); params, query and headers are checked in the handler.
        validatorCompiler: () => () => true,
      },
      async (request, reply) => {
        const id = messageId(request);
        const disposition = String(request.headers['content-disposition'] ?? '');
        if (disposition.length > 1024) throw new Problem(ingestionProblems.NEXTMOVE_CONTENT_DISPOSITION, 'Content-Disposition is longer than 1024 characters');
        const params = dispositionParams(disposition);
        if (!params.filename) throw new Problem(ingestionProblems.NEXTMOVE_CONTENT_DISPOSITION, 'Send Content-Disposition: attachment; name=<title>; filename=<file name>');
        const body = request.body;
        if (!Buffer.isBuffer(body)) throw new Problem(ingestionProblems.DOCUMENT_CONTENT_MISMATCH, 'The body is empty');
        const query = request.query as { title?: unknown };
        const title = (typeof query.title === 'string' ? query.title : undefined) ?? params.name ?? null;
        await uploadDocument(opts, clientOf(request).org, id, { filename: params.filename, title: title?.replace(/[\u0000-\u001f\u007f]/g, '').slice(0, 255) || null, mime: mimeOf(request.headers['content-type']), bytes: body });
        return reply.code(200).send();
      },
    );
  });

  app.post(
    '/messages/out/multipart',
    {
      onRequest: requireClient(SCOPES.send),
      validatorCompiler: () => () => true,
      schema: {
        summary: 'Create and send a message in one request (next-move)',
        description:
          'multipart/form-data: first the `sbd` part (JSON), then one file part per document: the part name is the title, its filename the file name, ' +
          'its Content-Type the document type. The same rules as create + upload + send; on any refusal nothing is left behind. ' +
          'The same messageId with the same SBD and documents answers the same again.',
        tags: ['next-move'],
        security: BEARER_SECURITY,
        consumes: ['multipart/form-data'],
        body: Type.Object(
          { sbd: Sbd, documents: Type.Array(DocumentFile(), { minItems: 1, maxItems: 1001, description: 'One file part per document (any part name: it is the title), the hoveddokument among them' }) },
          { examples: [{ sbd: SBD_EXAMPLE, documents: [''] }] },
        ),
        response: { 200: Sbd, ...nextMoveErrors(404, 409, 413, 415, 422) },
      },
    },
    async (request) => {
      const org = clientOf(request).org;
      if (!request.isMultipart()) throw new Problem(ingestionProblems.MULTIPART_REQUIRED, 'Send multipart/form-data: an `sbd` part, then the documents');
      const parts = request.parts()[Symbol.asyncIterator]();
      const next = async () => {
        try {
          const r = await parts.next();
          return r.done ? undefined : r.value;
        } catch (err) {
          throw new Problem(ingestionProblems.UNEXPECTED_PART, `The multipart body could not be read: ${(err as Error).message.slice(0, 200)}`);
        }
      };
      const first = await next();
      if (!first || first.fieldname !== 'sbd') throw violations([{ instancePath: '', keyword: 'required', params: { missingProperty: 'sbd' } }], undefined);
      const limit = deps.config.MESSAGE_MAX_BYTES;
      const readAll = async (stream: Readable, max: number) => {
        const chunks: Buffer[] = [];
        let n = 0;
        for await (const c of stream as AsyncIterable<Buffer>) {
          n += c.length;
          if (n > max) throw new Problem(ingestionProblems.LETTER_TOO_LARGE, `the documents exceed ${max} bytes`, { limit: max });
          chunks.push(c);
        }
        return Buffer.concat(chunks);
      };
      let raw: unknown = first.type === 'file' ? (await readAll(first.file, 256 * 1024)).toString('utf8') : first.value;
      if (typeof raw === 'string') {
        try {
          raw = JSON.parse(raw) as unknown;
        } catch {
          throw violations([{ instancePath: '/sbd', message: 'Must be JSON' }], undefined);
        }
      }
      if (!sbdValidator.Check(raw)) throw violations([...sbdValidator.Errors(raw)], raw);
      check(raw, 'sbd');
      const { row, created } = await create(org, raw as SbdBody);
      try {
        const uploads: Upload[] = [];
        let used = 0;
        for (let part = await next(); part; part = await next()) {
          if (part.type !== 'file') throw new Problem(ingestionProblems.UNEXPECTED_PART, `Unexpected field ${JSON.stringify(part.fieldname.slice(0, 100))}; documents are file parts`);
          const bytes = await readAll(part.file, limit - used);
          used += bytes.length;
          uploads.push({ filename: part.filename, title: part.fieldname.replace(/[\u0000-\u001f\u007f]/g, '').slice(0, 255) || null, mime: mimeOf(part.mimetype), bytes });
        }
        if (row.state === 'SENDT') {
          // A repeat of a message already sent: the same documents give the same answer.
          const sent = (await sentDocuments(db, row.message_id)) ?? [];
          const key = (d: { name: string; mime: string; sha256: string }) => `${d.name}\n${d.mime}\n${d.sha256}`;
          const mine = uploads.map((u) => key({ name: u.filename, mime: u.mime, sha256: createHash('sha256').update(u.bytes).digest('hex') })).sort();
          if (mine.join('\n\n') !== sent.map(key).sort().join('\n\n')) {
            throw new Problem(ingestionProblems.NEXTMOVE_MESSAGE_ID_CONFLICT, `messageId ${row.message_id} is already used for a message with other documents`);
          }
          return row.sbd;
        }
        for (const u of uploads) await uploadDocument(opts, org, row.message_id, u);
        await sendMessage(opts, org, row.message_id, parsedFor(org), request.log);
        return row.sbd;
      } catch (err) {
        if (created) await deleteMessage(db, org, row.message_id).catch(() => undefined);
        throw err;
      }
    },
  );
};

export default nextMoveMessageRoutes;
