import type { Kysely } from 'kysely';
import type { Database } from '../../shared/db/database.js';
import { Problem } from '../../shared/errors/problem.js';
import { contactUsable } from '../../shared/registry/contact-rule.js';
import { recordChanges, type ChangeEntry } from './changes.js';
import { normaliseContact, type ContactKind } from './contact.js';
import { activateMailbox, lockOrCreatePerson, type PersonRow, type Trx } from './person-store.js';
import { registryProblems } from './problems.js';

/**
 * Citizen self-service. Every change runs in one transaction: lock (or create) the person, change
 * the row, write history and outbox jobs, and append to the change feed last.
 */
async function change<T>(db: Kysely<Database>, personId: string, now: Date, fn: (trx: Trx, person: PersonRow, changes: ChangeEntry[]) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (trx) => {
    const changes: ChangeEntry[] = [];
    const person = await lockOrCreatePerson(trx, personId, now, changes);
    const result = await fn(trx, person, changes);
    await recordChanges(trx, changes);
    return result;
  });
}

export interface OwnMailbox {
  id: string;
  providerOrgnr: string;
  providerName: string;
  address: string;
  active: boolean;
  closedAt: Date | null;
  /** Whether it can be chosen now: open and at an active digital provider. */
  selectable: boolean;
}

export interface OwnContact {
  address: string;
  updatedAt: Date;
  verifiedAt: Date | null;
  usable: boolean;
}

export interface OwnRecord {
  personId: string;
  status: 'ACTIVE' | 'DELETED' | 'NOT_REGISTERED';
  reserved: boolean;
  reservedAt: Date | null;
  language: string | null;
  languageUpdatedAt: Date | null;
  email: OwnContact | null;
  mobile: OwnContact | null;
  canNotify: boolean;
  mailboxes: OwnMailbox[];
}

function contactOf(address: string | null, updatedAt: Date | null, verifiedAt: Date | null, now: Date): OwnContact | null {
  if (address === null || updatedAt === null) return null;
  return { address, updatedAt, verifiedAt, usable: contactUsable(updatedAt, verifiedAt, now) };
}

export async function ownRecord(db: Kysely<Database>, personId: string, now: Date): Promise<OwnRecord> {
  const p = await db.selectFrom('persons').selectAll().where('person_id', '=', personId).executeTakeFirst();
  const mailboxes = await db
    .selectFrom('mailboxes as m')
    .innerJoin('providers as pr', 'pr.orgnr', 'm.provider_orgnr')
    .select(['m.id', 'm.provider_orgnr', 'pr.name', 'pr.status', 'pr.kind', 'm.address', 'm.active', 'm.closed_at'])
    .where('m.person_id', '=', personId)
    .orderBy('m.id')
    .execute();
  const email = p ? contactOf(p.email, p.email_updated_at, p.email_verified_at, now) : null;
  const mobile = p ? contactOf(p.mobile, p.mobile_updated_at, p.mobile_verified_at, now) : null;
  return {
    personId,
    status: p?.status ?? 'NOT_REGISTERED',
    reserved: p?.reserved ?? false,
    reservedAt: p?.reserved_at ?? null,
    language: p?.language ?? null,
    languageUpdatedAt: p?.language_updated_at ?? null,
    email,
    mobile,
    canNotify: p?.status === 'ACTIVE' && !p.reserved && (email?.usable === true || mobile?.usable === true),
    mailboxes: mailboxes.map((m) => ({
      id: m.id,
      providerOrgnr: m.provider_orgnr,
      providerName: m.name,
      address: m.address,
      active: m.active,
      closedAt: m.closed_at,
      selectable: m.closed_at === null && m.status === 'active' && m.kind === 'digital',
    })),
  };
}

/** Sets (or replaces) the e-mail address or mobile number: updated now, not yet verified. */
export async function setContact(db: Kysely<Database>, personId: string, kind: ContactKind, raw: string, now: Date): Promise<void> {
  const value = normaliseContact(kind, raw);
  await change(db, personId, now, async (trx, _p, changes) => {
    await trx
      .updateTable('persons')
      .set(kind === 'email' ? { email: value, email_updated_at: now, email_verified_at: null, updated_at: now } : { mobile: value, mobile_updated_at: now, mobile_verified_at: null, updated_at: now })
      .where('person_id', '=', personId)
      .execute();
    changes.push({ personId, kind: 'contact' });
  });
}

/** The citizen confirms the contact point is still right: verified now (KRR's "sist verifisert"). */
export async function confirmContact(db: Kysely<Database>, personId: string, kind: ContactKind, now: Date): Promise<void> {
  await change(db, personId, now, async (trx, p, changes) => {
    if ((kind === 'email' ? p.email : p.mobile) === null) {
      throw new Problem(registryProblems.NO_CONTACT_POINT, `There is no ${kind === 'email' ? 'e-mail address' : 'mobile number'} to confirm`);
    }
    await trx
      .updateTable('persons')
      .set(kind === 'email' ? { email_verified_at: now, updated_at: now } : { mobile_verified_at: now, updated_at: now })
      .where('person_id', '=', personId)
      .execute();
    changes.push({ personId, kind: 'contact' });
  });
}

export async function removeContact(db: Kysely<Database>, personId: string, kind: ContactKind, now: Date): Promise<void> {
  await change(db, personId, now, async (trx, p, changes) => {
    if ((kind === 'email' ? p.email : p.mobile) === null) return;
    await trx
      .updateTable('persons')
      .set(kind === 'email' ? { email: null, email_updated_at: null, email_verified_at: null, updated_at: now } : { mobile: null, mobile_updated_at: null, mobile_verified_at: null, updated_at: now })
      .where('person_id', '=', personId)
      .execute();
    changes.push({ personId, kind: 'contact' });
  });
}

/** Reserve against digital mail (true) or withdraw the reservation (false). No-op when unchanged. */
export async function setReservation(db: Kysely<Database>, personId: string, reserved: boolean, now: Date, actor = 'citizen'): Promise<void> {
  await change(db, personId, now, async (trx, p, changes) => {
    if (p.reserved === reserved) return;
    await trx
      .updateTable('persons')
      .set({ reserved, reserved_at: reserved ? now : null, reservation_updated_at: now, updated_at: now })
      .where('person_id', '=', personId)
      .execute();
    await trx.insertInto('reservation_history').values({ person_id: personId, reserved, actor, changed_at: now }).execute();
    changes.push({ personId, kind: 'reservation' });
  });
}

export async function setLanguage(db: Kysely<Database>, personId: string, language: string, now: Date): Promise<void> {
  await change(db, personId, now, async (trx, _p, changes) => {
    await trx.updateTable('persons').set({ language, language_updated_at: now, updated_at: now }).where('person_id', '=', personId).execute();
    changes.push({ personId, kind: 'language' });
  });
}

/**
 * Chooses the active mailbox among the person's open mailboxes at active digital providers.
 * Choosing the one already active changes nothing.
 */
export async function chooseMailbox(db: Kysely<Database>, personId: string, mailboxId: string, now: Date): Promise<void> {
  await change(db, personId, now, async (trx, _p, changes) => {
    const m = await trx
      .selectFrom('mailboxes as m')
      .innerJoin('providers as pr', 'pr.orgnr', 'm.provider_orgnr')
      .select(['m.id', 'm.person_id', 'm.provider_orgnr', 'm.address', 'm.active', 'm.closed_at', 'pr.status', 'pr.kind'])
      .where('m.id', '=', mailboxId)
      .where('m.person_id', '=', personId)
      .executeTakeFirst();
    if (!m) throw new Problem(registryProblems.MAILBOX_NOT_FOUND, 'You have no mailbox with this id');
    if (m.closed_at !== null) throw new Problem(registryProblems.MAILBOX_CLOSED, 'This mailbox is closed');
    if (m.status !== 'active' || m.kind !== 'digital') throw new Problem(registryProblems.PROVIDER_UNAVAILABLE, 'The provider of this mailbox is not available');
    if (m.active) return;
    await activateMailbox(trx, m, 'citizen', now, changes);
  });
}
