import multipart from '@fastify/multipart';
import type { FastifyPluginAsync } from 'fastify';
import { registerJwksRoute } from '../../../shared/crypto/jwks-route.js';
import capabilities from './capabilities.js';
import evidence from './evidence.js';
import type { IngestionRouteOptions } from './context.js';
import messages from './messages.js';
import receipts from './receipts.js';
import webhooks from './webhooks.js';

/** The ingestion service's resources; each resource registers from its own file. */
const routes: FastifyPluginAsync<IngestionRouteOptions> = async (app, opts) => {
  const config = opts.deps.config;
  await app.register(multipart, {
    limits: {
      // The letter's total is enforced while streaming (DocumentGuard); one byte more here so
      // that check, with its precise problem, always fires first.
      fileSize: config.MESSAGE_MAX_BYTES + 1,
      files: config.MESSAGE_MAX_ATTACHMENTS + 1,
      fields: 1,
      parts: config.MESSAGE_MAX_ATTACHMENTS + 3,
      fieldSize: 256 * 1024,
      headerPairs: 50,
    },
  });
  // Senders verify receipts and webhook signatures against the hub keys; served here too.
  registerJwksRoute(app, () => opts.storage.hub);
  await app.register(capabilities, opts);
  await app.register(messages, opts);
  await app.register(evidence, opts);
  await app.register(receipts, opts);
  await app.register(webhooks, opts);
};

export default routes;
