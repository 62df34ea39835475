import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../shared/db/database.js';
import { Problem } from '../../shared/errors/problem.js';
import { findPrintProvider, findRecipients, type Recipient } from '../../shared/registry/recipients.js';
import { ingestionProblems } from './problems.js';

type DbLike = Kysely<Database> | Transaction<Database>;

const digitalMailbox = (r: Recipient) =>
  r.status === 'ACTIVE' && !r.reserved && r.mailbox && r.mailbox.providerKind === 'digital' ? r.mailbox : undefined;

export type Route =
  | { route: 'DIGITAL'; providerOrgnr: string; providerName: string; mailboxAddress: string }
  | { route: 'PRINT'; providerOrgnr: string; providerName: string; mailboxAddress: null };

/**
 * DESIGN flow 3: an active, unreserved person with an active mailbox -> DIGITAL to its provider;
 * otherwise PRINT when print details are given; otherwise a 422 naming the cause.
 */
export async function routeLetter(db: DbLike, personId: string, wantsPrint: boolean, now = new Date()): Promise<Route> {
  return routeRecipient(db, (await findRecipients(db, [personId], { now, certificates: false })).get(personId)!, wantsPrint);
}

/** A registry state no route can fix (print neither). */
function unknownRecipient(recipient: Recipient): Problem | undefined {
  if (recipient.status === 'NOT_REGISTERED') return new Problem(ingestionProblems.INVALID_RECIPIENT, 'The registry does not know this person');
  if (recipient.status === 'DELETED') return new Problem(ingestionProblems.RECIPIENT_DELETED, 'The person is deleted from the registry');
  return undefined;
}

function noMailbox(recipient: Recipient): Problem {
  if (recipient.reserved) return new Problem(ingestionProblems.RECIPIENT_RESERVED, 'The person has reserved against digital mail; add print details to send on paper');
  return new Problem(ingestionProblems.NO_DIGITAL_MAILBOX, 'The person has no active digital mailbox; add print details to send on paper');
}

const digitalOf = (mailbox: NonNullable<ReturnType<typeof digitalMailbox>>): Route => ({
  route: 'DIGITAL',
  providerOrgnr: mailbox.providerOrgnr,
  providerName: mailbox.providerName,
  mailboxAddress: mailbox.address,
});

/** The route of a letter without print details, or the 422 that refuses it; reads nothing (the group commit routes with it). */
export function digitalRoute(recipient: Recipient): Route | Problem {
  const unknown = unknownRecipient(recipient);
  if (unknown) return unknown;
  const mailbox = digitalMailbox(recipient);
  return mailbox ? digitalOf(mailbox) : noMailbox(recipient);
}

/** routeLetter for a recipient already looked up; reads the database only for a print route. */
export async function routeRecipient(db: DbLike, recipient: Recipient, wantsPrint: boolean): Promise<Route> {
  const unknown = unknownRecipient(recipient);
  if (unknown) throw unknown;
  const mailbox = digitalMailbox(recipient);
  if (mailbox) return digitalOf(mailbox);
  if (!wantsPrint) throw noMailbox(recipient);
  return printRoute(db);
}

/**
 * At commit (group commit, a few ms after routeRecipient): a letter sealed for `route` may still
 * be written, or the problem that fails it alone. A recipient that became reserved, deleted or
 * lost the mailbox gets the 422 routing would give now; a letter that would now go elsewhere
 * (another provider, or print instead) was sealed for the wrong addressee and is refused with
 * recipient-changed, so the client's retry is routed and sealed afresh.
 */
export function routeAtCommit(recipient: Recipient, route: Route, wantsPrint: boolean): Problem | undefined {
  const unknown = unknownRecipient(recipient);
  if (unknown) return unknown;
  const mailbox = digitalMailbox(recipient);
  if (route.route === 'PRINT') return undefined;
  if (mailbox && mailbox.providerOrgnr === route.providerOrgnr && mailbox.address === route.mailboxAddress) return undefined;
  if (!mailbox && !wantsPrint) return noMailbox(recipient);
  return new Problem(ingestionProblems.RECIPIENT_CHANGED, "The recipient's mailbox changed while the letter was being sent; send it again", {}, { 'retry-after': '1' });
}

export async function printRoute(db: DbLike): Promise<Route & { route: 'PRINT' }> {
  const printer = await findPrintProvider(db);
  if (!printer) throw new Problem(ingestionProblems.PRINT_UNAVAILABLE, 'No print provider is active');
  return { route: 'PRINT', providerOrgnr: printer.orgnr, providerName: printer.name, mailboxAddress: null };
}
