import type { Kysely } from 'kysely';
import type { ClientPrincipal } from '../../shared/auth/principal.js';
import { SCOPES } from '../../shared/auth/scopes.js';
import type { Database } from '../../shared/db/database.js';
import { Problem } from '../../shared/errors/problem.js';
import { invalidPersonIds } from '../../shared/ids/person-id.js';
import { findRecipients, type ContactPoint, type Recipient } from '../../shared/registry/recipients.js';
import { auditLookup, type LookupApi } from './audit.js';
import { registryProblems } from './problems.js';

export interface Access {
  contact: boolean;
  digitalPost: boolean;
}

export function nativeAccess(client: ClientPrincipal): Access {
  return { contact: client.scopes.has(SCOPES.lookupContact), digitalPost: client.scopes.has(SCOPES.lookupDigitalPost) };
}

/** KRR's rules: its own krr:global scopes or ours. */
export function krrAccess(client: ClientPrincipal): Access {
  const s = client.scopes;
  return {
    contact: s.has(SCOPES.krrContact) || s.has(SCOPES.lookupContact),
    digitalPost: s.has(SCOPES.krrDigitalPost) || s.has(SCOPES.lookupDigitalPost),
  };
}

/**
 * Validates the ids, audits the lookup and reads every person with one set-based query (plus
 * one for the provider certificates when the client may see them). Returns the recipients in
 * the order asked, each distinct id once.
 */
export async function lookup(
  db: Kysely<Database>,
  client: ClientPrincipal,
  api: LookupApi,
  personIds: readonly string[],
  access: Access,
  purpose: string | null,
  now: Date,
): Promise<Recipient[]> {
  const invalid = invalidPersonIds(personIds);
  if (invalid.length > 0) {
    throw new Problem(registryProblems.INVALID_PERSON_ID, `${invalid.length} personId(s) are not valid fødselsnummer or D-numbers`, { invalidPersonIds: invalid });
  }
  const unique = [...new Set(personIds)];
  const [found] = await Promise.all([
    findRecipients(db, unique, { now, mailbox: access.digitalPost, certificates: access.digitalPost }),
    auditLookup(db, client, api, unique.length, purpose),
  ]);
  return unique.map((id) => found.get(id)!);
}

/** base64 per certificate buffer: persons at one provider share its certificate, encoded once. */
export function certificateEncoder(): (der: Buffer) => string {
  const cache = new Map<Buffer, string>();
  return (der) => {
    let b64 = cache.get(der);
    if (b64 === undefined) {
      b64 = der.toString('base64');
      cache.set(der, b64);
    }
    return b64;
  };
}

export interface NativeContact {
  address: string;
  updatedAt: string;
  verifiedAt: string | null;
  usable: boolean;
}

export interface NativePerson {
  personId: string;
  status: Recipient['status'];
  reserved: boolean;
  canNotify: boolean;
  language?: string | null;
  email?: NativeContact;
  mobile?: NativeContact;
  mailbox?: { providerOrgnr: string; providerName: string; address: string };
  certificate?: string;
}

const nativeContact = (c: ContactPoint): NativeContact => ({
  address: c.address,
  updatedAt: c.updatedAt.toISOString(),
  verifiedAt: c.verifiedAt ? c.verifiedAt.toISOString() : null,
  usable: c.usable,
});

/** Our own answer: status, reserved and canNotify always; the rest by scope. */
export function toNative(r: Recipient, access: Access, encode: (der: Buffer) => string): NativePerson {
  const out: NativePerson = { personId: r.personId, status: r.status, reserved: r.reserved, canNotify: r.canNotify };
  if (r.status !== 'ACTIVE') return out;
  if (access.contact) {
    out.language = r.language;
    if (r.email) out.email = nativeContact(r.email);
    if (r.mobile) out.mobile = nativeContact(r.mobile);
  }
  if (access.digitalPost && r.mailbox) {
    out.mailbox = { providerOrgnr: r.mailbox.providerOrgnr, providerName: r.mailbox.providerName, address: r.mailbox.address };
    if (r.mailbox.certificateDer.length > 0) out.certificate = encode(r.mailbox.certificateDer);
  }
  return out;
}

export interface KrrPerson {
  personidentifikator: string;
  reservasjon: 'JA' | 'NEI';
  status: 'AKTIV' | 'SLETTET' | 'IKKE_REGISTRERT';
  varslingsstatus: 'KAN_VARSLES' | 'KAN_IKKE_VARSLES';
  kontaktinformasjon?: {
    epostadresse?: string;
    epostadresse_oppdatert?: string;
    epostadresse_sist_verifisert?: string;
    mobiltelefonnummer?: string;
    mobiltelefonnummer_oppdatert?: string;
    mobiltelefonnummer_sist_verifisert?: string;
  };
  digital_post?: { postkasseadresse: string; postkasseleverandoeradresse: string };
  sertifikat?: string;
  spraak?: string;
  spraak_oppdatert?: string;
}

const KRR_STATUS = { ACTIVE: 'AKTIV', DELETED: 'SLETTET', NOT_REGISTERED: 'IKKE_REGISTRERT' } as const;

/**
 * KRR's answer with KRR's names and rules: reservation always; contact info (and language) only
 * with a contact scope; mailbox and certificate only with a digital-post scope; and a person
 * whose contact info is outdated (no contact point passes the 18-month rule) gets neither.
 */
export function toKrr(r: Recipient, access: Access, encode: (der: Buffer) => string): KrrPerson {
  const out: KrrPerson = {
    personidentifikator: r.personId,
    reservasjon: r.reserved ? 'JA' : 'NEI',
    status: KRR_STATUS[r.status],
    varslingsstatus: r.canNotify ? 'KAN_VARSLES' : 'KAN_IKKE_VARSLES',
  };
  if (r.status !== 'ACTIVE') return out;
  const current = r.email?.usable === true || r.mobile?.usable === true;
  if (!current) return out;
  if (access.contact) {
    const k: NonNullable<KrrPerson['kontaktinformasjon']> = {};
    if (r.email) {
      k.epostadresse = r.email.address;
      k.epostadresse_oppdatert = r.email.updatedAt.toISOString();
      if (r.email.verifiedAt) k.epostadresse_sist_verifisert = r.email.verifiedAt.toISOString();
    }
    if (r.mobile) {
      k.mobiltelefonnummer = r.mobile.address;
      k.mobiltelefonnummer_oppdatert = r.mobile.updatedAt.toISOString();
      if (r.mobile.verifiedAt) k.mobiltelefonnummer_sist_verifisert = r.mobile.verifiedAt.toISOString();
    }
    out.kontaktinformasjon = k;
    if (r.language) {
      out.spraak = r.language;
      if (r.languageUpdatedAt) out.spraak_oppdatert = r.languageUpdatedAt.toISOString();
    }
  }
  if (access.digitalPost && r.mailbox) {
    out.digital_post = { postkasseadresse: r.mailbox.address, postkasseleverandoeradresse: r.mailbox.providerOrgnr };
    if (r.mailbox.certificateDer.length > 0) out.sertifikat = encode(r.mailbox.certificateDer);
  }
  return out;
}
