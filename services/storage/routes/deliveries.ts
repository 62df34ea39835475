import { Readable } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import { Counter } from 'prom-client';
import { Type } from 'typebox';
import type { ServiceDeps } from '../../../shared/app/deps.js';
import { BEARER_SECURITY, clientOf, requireClient } from '../../../shared/auth/guards.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { storageContext } from '../../../shared/storage/context.js';
import { acknowledge, acknowledgeMany, leaseDeliveries, packageFor, reportEvent, type ProviderEvent } from '../deliveries.js';
import { AckBatchBody, AckBatchResponse, DeliveryList, DeliveryParams, DeliveryStatusSchema, errors, ProviderEventSchema } from './schemas.js';
import { refuseSuspendedProvider } from '../provider-status.js';
import { signRouting } from '../routing.js';
import { releaseLeases } from '../undeliverable.js';
import type { PrintInstructions } from '../../../shared/crypto/asice.js';

export const CMS_CONTENT_TYPE = 'application/pkcs7-mime; smime-type=enveloped-data';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

const deliveries: FastifyPluginAsync<{ deps: ServiceDeps }> = async (app, { deps }) => {
  const ctx = () => storageContext(deps);
  const undeliverable = new Counter({
    name: 'storage_deliveries_undeliverable_total',
    help: 'Deliveries the hub failed because it cannot encrypt for the recipient (ERROR receipt sent), by reason',
    labelNames: ['reason'],
    registers: [app.metrics],
  });
  const client = requireClient(SCOPES.provider);
  // Every provider route refuses a suspended provider, reads and writes alike.
  const guard = [client, refuseSuspendedProvider(deps.db.kysely)];

  app.get(
    '/v1/deliveries',
    {
      onRequest: guard,
      schema: {
        tags: ['deliveries'],
        summary: 'Lease the next ready deliveries',
        description:
          'Ready deliveries addressed to the calling provider, oldest first. Each is leased for `leaseSeconds`: it is not listed again until the lease runs out, and if not acknowledged by then it is offered again (at-least-once). A delivery the hub cannot encrypt for the recipient (no usable certificate, e.g. expired since registration) never fails the listing: it is left out, becomes FAILED and its sender gets an ERROR receipt with reason CERTIFICATE_UNUSABLE.',
        security: BEARER_SECURITY,
        querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }) }, { additionalProperties: false }),
        response: { 200: DeliveryList, ...errors() },
      },
    },
    async (request) => {
      const org = clientOf(request).org;
      const { limit } = request.query as { limit: number };
      const leased = await leaseDeliveries(ctx(), org, limit, deps.config.DELIVERY_LEASE_SECONDS, {
        onUndeliverable: (reason) => undeliverable.inc({ reason }),
        onError: (deliveryId, err) => request.log.error({ err, deliveryId }, 'a delivery could not be prepared; left out of this listing, lease released'),
      });
      const hub = ctx().hub;
      // Leased but not answered (signing failed): give the leases back rather than hide them.
      const answer = async () => ({
        leaseSeconds: deps.config.DELIVERY_LEASE_SECONDS,
        deliveries: await Promise.all(leased.map(async ({ delivery: d, envelope }) => ({
          id: d.id,
          messageId: d.messageId,
          route: d.route,
          personId: d.personId,
          mailboxAddress: d.mailboxAddress,
          title: d.title,
          securityLevel: d.securityLevel as 3 | 4,
          availableAt: d.availableAt.toISOString(),
          ...(d.route === 'PRINT' ? { print: d.print as never } : {}),
          size: envelope.size,
          fingerprint: envelope.fingerprint.toString('hex'),
          leasedUntil: iso(d.leasedUntil)!,
          kind: d.kind ?? 'ORIGINAL',
          ...(d.kind === 'MOVED' ? { original: { senderOrgnr: d.senderOrgnr, deliveredAt: iso(d.originalDeliveredAt ?? null), openedAt: iso(d.originalOpenedAt ?? null) } } : {}),
          routing: await signRouting(hub, {
            deliveryId: d.id,
            messageId: d.messageId,
            manifestSha256: d.manifestSha256,
            route: d.route,
            providerOrgnr: d.providerOrgnr,
            mailboxAddress: d.mailboxAddress,
            print: d.print as PrintInstructions | undefined,
          }),
        }))),
      });
      try {
        return await answer();
      } catch (err) {
        await releaseLeases(ctx(), leased.map((l) => l.delivery)).catch(() => undefined);
        throw err;
      }
    },
  );

  app.get(
    '/v1/deliveries/:id/package',
    {
      // The download's one prepared query reads the provider's status itself (hot path).
      onRequest: client,
      schema: {
        tags: ['deliveries'],
        summary: 'Download the package as CMS EnvelopedData',
        description:
          'DER CMS EnvelopedData for the provider certificate (RSAES-OAEP SHA-256 key transport, AES-256-CBC content) around the ASiC-E package. `openssl cms -decrypt -inform DER -recip cert.pem -inkey key.pem` gives back the ZIP. The ETag is the fingerprint from the listing.',
        security: BEARER_SECURITY,
        params: DeliveryParams,
        headers: Type.Object({
          'if-none-match': Type.Optional(Type.String({ maxLength: 200, description: 'The ETag (quoted fingerprint) of a copy you have: 304 if it is still the package' })),
        }),
        responseHeaders: {
          200: {
            ETag: { description: 'The quoted SHA-256 fingerprint of the CMS bytes, as in the listing', type: 'string', maxLength: 66 },
            'Content-Length': { description: 'Exact byte length of the package', type: 'integer', minimum: 0, maximum: 2 ** 40 },
          },
          304: { ETag: { description: 'The quoted SHA-256 fingerprint of the CMS bytes', type: 'string', maxLength: 66 } },
        },
        response: {
          200: {
            description: 'The CMS bytes (application/pkcs7-mime), with Content-Length and ETag',
            content: { 'application/pkcs7-mime': { schema: Type.String({ format: 'binary' }) } },
          },
          304: { description: 'If-None-Match matched the fingerprint', type: 'null' },
          ...errors(404, 409, 410),
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const { delivery, envelope, firstChunk } = await packageFor(ctx(), clientOf(request).org, id);
      const etag = `"${envelope.fingerprint.toString('hex')}"`;
      reply.header('etag', etag).header('cache-control', 'private, no-store');
      if (request.headers['if-none-match'] === etag) return reply.code(304).send();
      reply.type(CMS_CONTENT_TYPE).header('content-length', String(envelope.size)).header('content-disposition', `attachment; filename="${delivery.id}.p7m"`);
      // A one-chunk package (up to 1 MB) is already in hand: send it without stream machinery.
      if (delivery.chunks === 1 && firstChunk) return reply.send(Buffer.concat([envelope.header, firstChunk]));
      const blobs = ctx().blobs;
      async function* body() {
        yield envelope.header;
        if (firstChunk) yield firstChunk;
        yield* blobs.read(delivery.packageId, delivery.chunks, firstChunk ? 1 : 0);
      }
      return reply.send(Readable.from(body(), { objectMode: false }));
    },
  );

  app.post(
    '/v1/deliveries/:id/ack',
    {
      onRequest: guard,
      schema: {
        tags: ['deliveries'],
        summary: 'Acknowledge a delivery',
        description: 'DELIVERED for a digital delivery, PRINT_ACCEPTED for print; signs a receipt for the sender. Acknowledging again answers the same and changes nothing.',
        security: BEARER_SECURITY,
        params: DeliveryParams,
        response: { 200: DeliveryStatusSchema, ...errors(404, 409) },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const s = await acknowledge(ctx(), clientOf(request).org, id);
      return { ...s, ackedAt: iso(s.ackedAt) };
    },
  );

  app.post(
    '/v1/deliveries/ack',
    {
      onRequest: guard,
      schema: {
        tags: ['deliveries'],
        summary: 'Acknowledge many deliveries at once',
        description:
          'The batch form of POST /v1/deliveries/{id}/ack, in one transaction: each id is answered in order, as the single acknowledgement would answer it ' +
          '(its status, or the problem: not found, refused), and one bad id does not stop the others.',
        security: BEARER_SECURITY,
        body: AckBatchBody,
        response: { 200: AckBatchResponse, ...errors() },
      },
    },
    async (request) => {
      const { ids } = request.body as { ids: string[] };
      const results = await acknowledgeMany(ctx(), clientOf(request).org, ids);
      return {
        results: results.map((r) =>
          r.status ? { id: r.id, ok: true, delivery: { ...r.status, ackedAt: iso(r.status.ackedAt) } } : { id: r.id, ok: false, problem: r.problem!.body() },
        ),
      };
    },
  );

  app.post(
    '/v1/deliveries/:id/events',
    {
      onRequest: guard,
      schema: {
        tags: ['deliveries'],
        summary: 'Report what happened to a delivery',
        description:
          'OPENED (digital, after DELIVERED; when and with which security level: at least the letter\'s, and not before its availableAt), PRINTED and RETURNED (print, after PRINT_ACCEPTED), FAILED with a reason. Each is an event in the evidence log; OPENED, RETURNED and FAILED give the sender a receipt. Reporting the current state again is a no-op. An `at` in the future or before the hub offered the delivery (5 minutes\' tolerance for clock drift) is refused with 422.',
        security: BEARER_SECURITY,
        params: DeliveryParams,
        body: ProviderEventSchema,
        response: { 200: DeliveryStatusSchema, ...errors(404, 409, 422) },
      },
    },
    async (request) => {
      const { id } = request.params as { id: string };
      const s = await reportEvent(ctx(), clientOf(request).org, id, request.body as ProviderEvent);
      return { ...s, ackedAt: iso(s.ackedAt) };
    },
  );
};

export default deliveries;
