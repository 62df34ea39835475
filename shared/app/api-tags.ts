/**
 * The description of every OpenAPI tag any service uses. A route with a tag missing here fails
 * the document build (and so the drift test): add the tag with a sentence an integrator can use.
 */
export const API_TAGS: Readonly<Record<string, string>> = {
  health: 'Liveness and readiness probes for orchestrators; public, not rate-limited',
  metrics: 'Prometheus metrics; public, not rate-limited',
  keys: 'The hub signing keys (JWKS) that verify package manifests, receipts and webhook signatures',
  capabilities: 'Agencies: the route a letter to a person would take now (digital or print)',
  messages: 'Agencies: send letters (multipart, idempotent) and follow their status and evidence timeline',
  receipts: 'Agencies: signed receipts (DELIVERED, OPENED, ...) to pull and acknowledge',
  webhooks: 'Operators: the HTTPS endpoint each sender gets its receipts pushed to',
  lookup: 'Agencies: contact and reservation registry lookups (native API)',
  krr: 'Agencies: KRR-compatible lookups (oppslagstjenesten REST v1 and v2 shapes)',
  changes: 'Agencies and mirrors: the ordered change feed of persons',
  citizen: 'Citizens: read and change their own registry record (ID-porten token)',
  provider: 'Mailbox providers: mailboxes their users created, and their encryption certificate',
  deliveries: 'Mailbox and print providers: lease deliveries, download packages, acknowledge and report events',
  invitations: 'Agencies: invite persons without a digital mailbox to choose one',
  evidence: 'Agencies and auditors: a letter\'s evidence bundle (events, receipts, Merkle log head and proofs) and the log heads, verifiable offline',
  moves: 'Citizens, providers and operators: moving delivered letters from the old mailbox provider to the new one (flyttet digitalpost)',
  'next-move': 'Agency systems built for the eFormidling integrasjonspunkt: the next-move REST API for digital post to citizens (DPI), in its own shapes and error format',
  admin: 'Operators (postbud:admin): onboarding, bulk import, lookup audit, queues and the development alert sink',
};

/** The port each service listens on under `npm start` (the development server in each document). */
export const SERVICE_PORTS = { registry: 3001, ingestion: 3002, storage: 3003, notification: 3004 } as const;
