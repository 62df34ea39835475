import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../db/database.js';
import { contactUsable } from './contact-rule.js';

type DbLike = Kysely<Database> | Transaction<Database>;

export type PersonStatus = 'ACTIVE' | 'DELETED' | 'NOT_REGISTERED';

export interface ContactPoint {
  address: string;
  updatedAt: Date;
  verifiedAt: Date | null;
  /** Passes the 18-month rule now. */
  usable: boolean;
}

export interface RecipientMailbox {
  providerOrgnr: string;
  providerName: string;
  providerKind: 'digital' | 'print';
  address: string;
  /** The mailbox's own certificate, else the provider's (DER). */
  certificateDer: Buffer;
  /** True when certificateDer is the mailbox's own. */
  ownCertificate: boolean;
}

export interface Recipient {
  personId: string;
  status: PersonStatus;
  reserved: boolean;
  /** When the current reservation took effect. */
  reservedAt?: Date | null;
  reservationUpdatedAt?: Date | null;
  language: string | null;
  languageUpdatedAt?: Date | null;
  /** Not reserved, ACTIVE, and at least one contact point passes the 18-month rule. */
  canNotify: boolean;
  email?: ContactPoint;
  mobile?: ContactPoint;
  /** The active mailbox at an active provider; absent for DELETED and NOT_REGISTERED persons. */
  mailbox?: RecipientMailbox;
}

export interface RecipientQueryOptions {
  now?: Date;
  /** Include the active mailbox (default true). */
  mailbox?: boolean;
  /** Load certificates for mailboxes (default true; false leaves certificateDer empty). */
  certificates?: boolean;
}

/** A row of the lookup query; timestamps come as epoch milliseconds (cheaper to parse than timestamptz text). */
export interface RecipientRow {
  person_id: string;
  status: 'ACTIVE' | 'DELETED';
  reserved: boolean;
  reserved_at: number | null;
  reservation_updated_at: number | null;
  language: string | null;
  language_updated_at: number | null;
  email: string | null;
  email_updated_at: number | null;
  email_verified_at: number | null;
  mobile: string | null;
  mobile_updated_at: number | null;
  mobile_verified_at: number | null;
  provider_orgnr: string | null;
  provider_name: string | null;
  provider_kind: 'digital' | 'print' | null;
  mailbox_address: string | null;
  mailbox_certificate: Buffer | null;
}

const ms = (column: string) => sql.raw(`(extract(epoch from ${column}) * 1000)::float8`);

/**
 * The one set-based query behind every lookup: the requested ids drive a nested loop over the
 * primary key of persons and the partial unique index of active mailboxes (one index probe each
 * per person, whatever the table sizes), joined to active providers. Provider certificates are
 * read separately, once per provider, so 1000 persons at Digipost do not carry 1000 copies of
 * one certificate.
 */
export function recipientsQuery(personIds: readonly string[], withMailbox = true) {
  const mailbox = withMailbox
    ? sql`pr.orgnr as provider_orgnr, pr.name as provider_name, pr.kind as provider_kind, m.address as mailbox_address, m.certificate as mailbox_certificate`
    : sql`null as provider_orgnr, null as provider_name, null as provider_kind, null as mailbox_address, null::bytea as mailbox_certificate`;
  const joins = withMailbox
    ? sql`left join mailboxes m on m.person_id = p.person_id and m.active
          left join providers pr on pr.orgnr = m.provider_orgnr and pr.status = 'active'`
    : sql``;
  return sql<RecipientRow>`
    select p.person_id, p.status, p.reserved, ${ms('p.reserved_at')} as reserved_at,
           ${ms('p.reservation_updated_at')} as reservation_updated_at,
           p.language, ${ms('p.language_updated_at')} as language_updated_at,
           p.email, ${ms('p.email_updated_at')} as email_updated_at, ${ms('p.email_verified_at')} as email_verified_at,
           p.mobile, ${ms('p.mobile_updated_at')} as mobile_updated_at, ${ms('p.mobile_verified_at')} as mobile_verified_at,
           ${mailbox}
      from unnest(${sql.val(personIds)}::text[]) as ids(person_id)
      join persons p on p.person_id = ids.person_id
      ${joins}`;
}

const toDate = (v: number | null): Date | null => (v === null ? null : new Date(v));

function contactPoint(address: string | null, updatedAt: number | null, verifiedAt: number | null, now: Date): ContactPoint | undefined {
  if (address === null || updatedAt === null) return undefined;
  const u = new Date(updatedAt);
  const v = toDate(verifiedAt);
  return { address, updatedAt: u, verifiedAt: v, usable: contactUsable(u, v, now) };
}

/**
 * One row of recipientsQuery as a Recipient. `providerCerts` holds the provider certificates
 * for mailboxes without their own (empty when certificates are not wanted).
 */
export function recipientFromRow(r: RecipientRow, now: Date, providerCerts: ReadonlyMap<string, Buffer> = new Map()): Recipient {
  const active = r.status === 'ACTIVE';
  const email = active ? contactPoint(r.email, r.email_updated_at, r.email_verified_at, now) : undefined;
  const mobile = active ? contactPoint(r.mobile, r.mobile_updated_at, r.mobile_verified_at, now) : undefined;
  const rec: Recipient = {
    personId: r.person_id,
    status: r.status,
    reserved: r.reserved,
    reservedAt: toDate(r.reserved_at),
    reservationUpdatedAt: toDate(r.reservation_updated_at),
    language: r.language,
    languageUpdatedAt: toDate(r.language_updated_at),
    canNotify: active && !r.reserved && (email?.usable === true || mobile?.usable === true),
  };
  if (email) rec.email = email;
  if (mobile) rec.mobile = mobile;
  if (active && r.provider_orgnr && r.mailbox_address && r.provider_name && r.provider_kind) {
    const own = r.mailbox_certificate;
    rec.mailbox = {
      providerOrgnr: r.provider_orgnr,
      providerName: r.provider_name,
      providerKind: r.provider_kind,
      address: r.mailbox_address,
      certificateDer: own ?? providerCerts.get(r.provider_orgnr) ?? Buffer.alloc(0),
      ownCertificate: own !== null,
    };
  }
  return rec;
}

/**
 * Every requested personId mapped to what the registry says about it: valid but unknown ids
 * come back as NOT_REGISTERED. The caller validates ids first (shared/ids/person-id.ts).
 */
export async function findRecipients(db: DbLike, personIds: readonly string[], opts: RecipientQueryOptions = {}): Promise<Map<string, Recipient>> {
  const now = opts.now ?? new Date();
  const withMailbox = opts.mailbox ?? true;
  const withCerts = withMailbox && (opts.certificates ?? true);
  const unique = [...new Set(personIds)];
  const rows = unique.length === 0 ? [] : (await recipientsQuery(unique, withMailbox).execute(db)).rows;

  const providerCerts = new Map<string, Buffer>();
  if (withCerts) {
    const needed = new Set<string>();
    for (const r of rows) if (r.provider_orgnr && !r.mailbox_certificate && r.status === 'ACTIVE') needed.add(r.provider_orgnr);
    if (needed.size > 0) {
      const providers = await db.selectFrom('providers').select(['orgnr', 'certificate']).where('orgnr', 'in', [...needed]).execute();
      for (const p of providers) if (p.certificate) providerCerts.set(p.orgnr, p.certificate);
    }
  }

  const out = new Map<string, Recipient>();
  for (const r of rows) out.set(r.person_id, recipientFromRow(r, now, providerCerts));
  for (const id of unique) {
    if (!out.has(id)) out.set(id, { personId: id, status: 'NOT_REGISTERED', reserved: false, language: null, canNotify: false });
  }
  return out;
}

export interface SenderInfo {
  orgnr: string;
  name: string;
  status: 'active' | 'suspended';
}

export async function findSender(db: DbLike, orgnr: string): Promise<SenderInfo | undefined> {
  return db.selectFrom('senders').select(['orgnr', 'name', 'status']).where('orgnr', '=', orgnr).executeTakeFirst();
}

export interface ProviderInfo {
  orgnr: string;
  name: string;
  kind: 'digital' | 'print';
  status: 'active' | 'suspended';
  certificateDer: Buffer | null;
}

const providerColumns = ['orgnr', 'name', 'kind', 'status', 'certificate as certificateDer'] as const;

export async function findProvider(db: DbLike, orgnr: string): Promise<ProviderInfo | undefined> {
  return db.selectFrom('providers').select(providerColumns).where('orgnr', '=', orgnr).executeTakeFirst();
}

/** The first (by orgnr) active print provider. */
export async function findPrintProvider(db: DbLike): Promise<ProviderInfo | undefined> {
  return db
    .selectFrom('providers')
    .select(providerColumns)
    .where('kind', '=', 'print')
    .where('status', '=', 'active')
    .orderBy('orgnr')
    .limit(1)
    .executeTakeFirst();
}
