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

/**
 * The one set-based query behind every lookup: persons by id with their active mailbox at an
 * active provider (and the mailbox's own certificate). Provider certificates are read separately,
 * once per provider, so 1000 persons at Digipost do not carry 1000 copies of one certificate.
 */
export function recipientsQuery(db: DbLike, personIds: readonly string[], withMailbox = true) {
  const base = db
    .selectFrom('persons as p')
    .select([
      'p.person_id',
      'p.status',
      'p.reserved',
      'p.reserved_at',
      'p.reservation_updated_at',
      'p.language',
      'p.language_updated_at',
      'p.email',
      'p.email_updated_at',
      'p.email_verified_at',
      'p.mobile',
      'p.mobile_updated_at',
      'p.mobile_verified_at',
    ])
    .where('p.person_id', '=', sql<string>`any(${sql.val(personIds)}::text[])`);
  if (!withMailbox) {
    return base.select([
      sql<string | null>`null`.as('provider_orgnr'),
      sql<string | null>`null`.as('provider_name'),
      sql<'digital' | 'print' | null>`null`.as('provider_kind'),
      sql<string | null>`null`.as('mailbox_address'),
      sql<Buffer | null>`null`.as('mailbox_certificate'),
    ]);
  }
  return base
    .leftJoin('mailboxes as m', (j) => j.onRef('m.person_id', '=', 'p.person_id').on('m.active', '=', true))
    .leftJoin('providers as pr', (j) => j.onRef('pr.orgnr', '=', 'm.provider_orgnr').on('pr.status', '=', 'active'))
    .select([
      'pr.orgnr as provider_orgnr',
      'pr.name as provider_name',
      'pr.kind as provider_kind',
      'm.address as mailbox_address',
      'm.certificate as mailbox_certificate',
    ]);
}

function contactPoint(address: string | null, updatedAt: Date | null, verifiedAt: Date | null, now: Date): ContactPoint | undefined {
  if (address === null || updatedAt === null) return undefined;
  return { address, updatedAt, verifiedAt, usable: contactUsable(updatedAt, verifiedAt, now) };
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
  const rows = unique.length === 0 ? [] : await recipientsQuery(db, unique, withMailbox).execute();

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
  for (const r of rows) {
    const active = r.status === 'ACTIVE';
    const email = active ? contactPoint(r.email, r.email_updated_at, r.email_verified_at, now) : undefined;
    const mobile = active ? contactPoint(r.mobile, r.mobile_updated_at, r.mobile_verified_at, now) : undefined;
    const rec: Recipient = {
      personId: r.person_id,
      status: r.status,
      reserved: r.reserved,
      reservedAt: r.reserved_at,
      reservationUpdatedAt: r.reservation_updated_at,
      language: r.language,
      languageUpdatedAt: r.language_updated_at,
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
    out.set(r.person_id, rec);
  }
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
