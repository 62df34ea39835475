/** Every scope postbud knows, in one place. Routes name these constants, never strings. */
export const SCOPES = {
  lookup: 'postbud:lookup',
  lookupContact: 'postbud:lookup.contact',
  lookupDigitalPost: 'postbud:lookup.digitalpost',
  send: 'postbud:send',
  provider: 'postbud:provider',
  admin: 'postbud:admin',
  krrContact: 'krr:global/kontaktinformasjon.read',
  krrDigitalPost: 'krr:global/digitalpost.read',
} as const;

export type Scope = (typeof SCOPES)[keyof typeof SCOPES];

/** What each scope lets a client do; the OpenAPI documents' OAuth2 scheme lists exactly these. */
export const SCOPE_DESCRIPTIONS: Readonly<Record<Scope, string>> = {
  'postbud:lookup': 'Agencies: look persons up (status, reservation, canNotify) and read the change feed',
  'postbud:lookup.contact': 'Agencies: lookups also return e-mail, mobile and language (contact points passing the 18-month rule)',
  'postbud:lookup.digitalpost': 'Agencies: lookups also return the mailbox address, provider and encryption certificate',
  'postbud:send': 'Agencies (onboarded senders): send letters, read their status and receipts, check capabilities, invite persons',
  'postbud:provider': 'Mailbox and print providers (onboarded): their mailboxes, certificate, deliveries, packages, acknowledgements and events',
  'postbud:admin': 'Operators: onboarding of senders and providers, bulk import, lookup audit, webhooks, queues',
  'krr:global/kontaktinformasjon.read': "KRR's own scope (oppslagstjenesten): kontaktinformasjon and spraak in the KRR-compatible lookup",
  'krr:global/digitalpost.read': "KRR's own scope (oppslagstjenesten): digital_post and sertifikat in the KRR-compatible lookup",
};

/** ID-porten levels of assurance, weakest first. */
export const ACR_LEVELS = ['idporten-loa-low', 'idporten-loa-substantial', 'idporten-loa-high'] as const;
export type Acr = (typeof ACR_LEVELS)[number];

export const acrAtLeast = (actual: string, required: Acr): boolean =>
  ACR_LEVELS.indexOf(actual as Acr) >= ACR_LEVELS.indexOf(required);
