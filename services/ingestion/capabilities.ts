import type { Kysely } from 'kysely';
import type { ClientPrincipal } from '../../shared/auth/principal.js';
import { SCOPES } from '../../shared/auth/scopes.js';
import type { Database } from '../../shared/db/database.js';
import { Problem } from '../../shared/errors/problem.js';
import { isValidPersonId } from '../../shared/ids/person-id.js';
import { recordLookup, type LookupApi } from '../../shared/registry/lookup-audit.js';
import { findPrintProvider, findRecipients, type Recipient } from '../../shared/registry/recipients.js';
import { ingestionProblems } from './problems.js';

/** Why digital mail is not possible now. */
export type DigitalReason = 'NOT_REGISTERED' | 'DELETED' | 'RESERVED' | 'NO_MAILBOX';
/** Why the hub cannot alert the person (canNotify false). */
export type NotifyReason = 'NOT_REGISTERED' | 'DELETED' | 'RESERVED' | 'CONTACT_OUTDATED' | 'NO_CONTACT_INFO';
/** Why print is not possible. */
export type PrintReason = 'NOT_REGISTERED' | 'DELETED' | 'PRINT_UNAVAILABLE';
/** The one code a caller acts on: the first that applies, in this order; null when digital mail with alerts is possible. */
export type CapabilityReason = DigitalReason | 'CONTACT_OUTDATED' | 'NO_CONTACT_INFO';

export interface CapabilitiesView {
  status: Recipient['status'];
  reserved: boolean;
  canNotify: boolean;
  reason: CapabilityReason | null;
  canNotifyReason: NotifyReason | null;
  digital: {
    possible: boolean;
    reason: DigitalReason | null;
    /** Only with postbud:lookup.digitalpost, like the registry's lookup; null otherwise. */
    provider: { orgnr: string; name: string } | null;
    /** Only with postbud:lookup.digitalpost; null otherwise. */
    mailboxAddress: string | null;
    securityLevels: number[];
  };
  print: { possible: boolean; reason: PrintReason | null; provider: { orgnr: string; name: string } | null };
}

/** What a caller may see: the mailbox (provider and address) only with the digital-post scope, as in the registry's lookup. */
export interface CapabilitiesAccess {
  digitalPost: boolean;
}

export const capabilitiesAccess = (client: ClientPrincipal): CapabilitiesAccess => ({ digitalPost: client.scopes.has(SCOPES.lookupDigitalPost) });

const digitalMailbox = (r: Recipient) =>
  r.status === 'ACTIVE' && !r.reserved && r.mailbox && r.mailbox.providerKind === 'digital' ? r.mailbox : undefined;

function notifyReason(r: Recipient): NotifyReason | null {
  if (r.status === 'NOT_REGISTERED') return 'NOT_REGISTERED';
  if (r.status === 'DELETED') return 'DELETED';
  if (r.reserved) return 'RESERVED';
  if (r.canNotify) return null;
  return r.email || r.mobile ? 'CONTACT_OUTDATED' : 'NO_CONTACT_INFO';
}

/** The route a letter would take now, with reason codes, as `access` allows the caller to see it. */
export function capabilitiesView(r: Recipient, printer: { orgnr: string; name: string; status: string } | undefined, access: CapabilitiesAccess): CapabilitiesView {
  const mailbox = digitalMailbox(r);
  const digitalReason: DigitalReason | null = mailbox
    ? null
    : r.status === 'NOT_REGISTERED'
      ? 'NOT_REGISTERED'
      : r.status === 'DELETED'
        ? 'DELETED'
        : r.reserved
          ? 'RESERVED'
          : 'NO_MAILBOX';
  const canNotifyReason = notifyReason(r);
  const printPossible = r.status === 'ACTIVE' && printer?.status === 'active';
  const printReason: PrintReason | null = printPossible ? null : r.status === 'NOT_REGISTERED' ? 'NOT_REGISTERED' : r.status === 'DELETED' ? 'DELETED' : 'PRINT_UNAVAILABLE';
  const show = mailbox && access.digitalPost ? mailbox : undefined;
  return {
    status: r.status,
    reserved: r.reserved,
    canNotify: r.canNotify,
    reason: digitalReason ?? (canNotifyReason as CapabilityReason | null),
    canNotifyReason,
    digital: {
      possible: mailbox !== undefined,
      reason: digitalReason,
      provider: show ? { orgnr: show.providerOrgnr, name: show.providerName } : null,
      mailboxAddress: show?.address ?? null,
      securityLevels: mailbox ? [3, 4] : [],
    },
    print: { possible: printPossible, reason: printReason, provider: printer ? { orgnr: printer.orgnr, name: printer.name } : null },
  };
}

export interface CapabilitiesRequest {
  /** Which API answers (the audit says so). */
  api: Extract<LookupApi, 'capabilities' | 'eformidling-capabilities'>;
  /** The caller's X-Purpose, already cleaned (cleanPurpose). */
  purpose: string | null;
  now?: Date;
}

/**
 * The capabilities of a person as the caller may see them, audited: validates the id, writes the
 * lookup-audit entry through the registry's record_lookup() (who, when, one person, which API,
 * scopes, purpose) alongside the read, and answers only once both are done. Every API that tells
 * a sender about a person's route (native `/v1/capabilities`, eFormidling's `/api/capabilities`)
 * goes through here.
 */
export async function capabilitiesFor(db: Kysely<Database>, client: ClientPrincipal, personId: string, req: CapabilitiesRequest): Promise<CapabilitiesView> {
  if (!isValidPersonId(personId)) throw new Problem(ingestionProblems.INVALID_PERSON_ID, 'The personId is not a valid fødselsnummer or D-number');
  const now = req.now ?? new Date();
  const [found, printer] = await Promise.all([
    findRecipients(db, [personId], { now, certificates: false }),
    findPrintProvider(db),
    recordLookup(db, client, req.api, 1, req.purpose),
  ]);
  return capabilitiesView(found.get(personId)!, printer, capabilitiesAccess(client));
}
