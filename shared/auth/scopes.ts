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

/** ID-porten levels of assurance, weakest first. */
export const ACR_LEVELS = ['idporten-loa-low', 'idporten-loa-substantial', 'idporten-loa-high'] as const;
export type Acr = (typeof ACR_LEVELS)[number];

export const acrAtLeast = (actual: string, required: Acr): boolean =>
  ACR_LEVELS.indexOf(actual as Acr) >= ACR_LEVELS.indexOf(required);
