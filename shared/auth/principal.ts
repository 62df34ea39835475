/** A machine client (agency, provider, operator) identified by the org in its Maskinporten token. */
export interface ClientPrincipal {
  kind: 'client';
  /** 9-digit organisation number from `consumer.ID` ("0192:<orgnr>"). */
  org: string;
  scopes: ReadonlySet<string>;
  issuer: string;
  clientId?: string | undefined;
}

/** A citizen signed in through ID-porten. */
export interface CitizenPrincipal {
  kind: 'citizen';
  pid: string;
  acr: string;
  issuer: string;
}

export type Principal = ClientPrincipal | CitizenPrincipal;
