import { sql, type Kysely } from 'kysely';
import { Type, type Static } from 'typebox';
import { Compile } from 'typebox/compile';
import type { Database } from '../../shared/db/database.js';
import { findBadValue } from '../../shared/app/input-guard.js';
import { Problem } from '../../shared/errors/problem.js';
import { isValidOrgnr } from '../../shared/ids/orgnr.js';
import { isValidPersonId } from '../../shared/ids/person-id.js';
import { enqueue } from '../../shared/outbox/outbox.js';
import { recordChanges, type ChangeEntry } from './changes.js';
import { normaliseEmail, normaliseMobile } from './contact.js';
import { mailboxHistory, type MailboxRef, type Trx } from './person-store.js';
import { registryProblems } from './problems.js';

const Timestamp = Type.String({ maxLength: 40, description: 'ISO 8601 date-time' });
const Language = Type.Union([Type.Literal('nb'), Type.Literal('nn'), Type.Literal('en'), Type.Literal('se')]);

/** One line of a bulk import. Absent fields keep their current value. */
export const ImportRecord = Type.Object(
  {
    personId: Type.String({ maxLength: 64 }),
    status: Type.Optional(Type.Union([Type.Literal('ACTIVE'), Type.Literal('DELETED')])),
    reserved: Type.Optional(Type.Boolean()),
    reservedAt: Type.Optional(Timestamp),
    language: Type.Optional(Language),
    languageUpdatedAt: Type.Optional(Timestamp),
    email: Type.Optional(Type.String({ maxLength: 254 })),
    emailUpdatedAt: Type.Optional(Timestamp),
    emailVerifiedAt: Type.Optional(Timestamp),
    mobile: Type.Optional(Type.String({ maxLength: 32 })),
    mobileUpdatedAt: Type.Optional(Timestamp),
    mobileVerifiedAt: Type.Optional(Timestamp),
    mailbox: Type.Optional(
      Type.Object({ providerOrgnr: Type.String({ maxLength: 9 }), address: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false }),
    ),
  },
  { additionalProperties: false },
);
export type ImportRecord = Static<typeof ImportRecord>;
const checkRecord = Compile(ImportRecord);

export interface ImportError {
  line: number;
  message: string;
}

export interface ImportSummary {
  received: number;
  created: number;
  updated: number;
  unchanged: number;
  mailboxesActivated: number;
}

const MAX_ERRORS = 100;

/** Parses JSON lines (blank lines ignored) into records, collecting every error with its line number. */
export function parseImport(text: string): { records: ImportRecord[]; lines: number[] } {
  const records: ImportRecord[] = [];
  const lines: number[] = [];
  const errors: ImportError[] = [];
  const seen = new Map<string, number>();
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '' || errors.length >= MAX_ERRORS) return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      errors.push({ line, message: 'not valid JSON' });
      return;
    }
    const bad = findBadValue(value);
    if (bad) {
      errors.push({ line, message: `${bad.pointer || '/'} ${bad.message}` });
      return;
    }
    const problem = recordProblem(value);
    if (problem) {
      errors.push({ line, message: problem });
      return;
    }
    const rec = value as ImportRecord;
    const earlier = seen.get(rec.personId);
    if (earlier !== undefined) {
      errors.push({ line, message: `the same person as line ${earlier}` });
      return;
    }
    seen.set(rec.personId, line);
    records.push(rec);
    lines.push(line);
  });
  if (errors.length > 0) throw new Problem(registryProblems.INVALID_IMPORT, `${errors.length}${errors.length >= MAX_ERRORS ? '+' : ''} invalid line(s)`, { errors });
  return { records, lines };
}

function recordProblem(value: unknown): string | undefined {
  if (!checkRecord.Check(value)) {
    const first = [...checkRecord.Errors(value)][0];
    return `${first?.instancePath || '/'} ${first?.message ?? 'does not match the schema'}`;
  }
  const rec = value as ImportRecord;
  if (!isValidPersonId(rec.personId)) return 'personId is not a valid fødselsnummer or D-number';
  for (const key of ['reservedAt', 'languageUpdatedAt', 'emailUpdatedAt', 'emailVerifiedAt', 'mobileUpdatedAt', 'mobileVerifiedAt'] as const) {
    const v = rec[key];
    if (v !== undefined && Number.isNaN(Date.parse(v))) return `${key} is not an ISO 8601 date-time`;
  }
  try {
    if (rec.email !== undefined) rec.email = normaliseEmail(rec.email);
    if (rec.mobile !== undefined) rec.mobile = normaliseMobile(rec.mobile);
  } catch (err) {
    return err instanceof Problem ? (err.detail ?? 'invalid contact point') : 'invalid contact point';
  }
  if (rec.mailbox && !isValidOrgnr(rec.mailbox.providerOrgnr)) return 'mailbox.providerOrgnr is not a valid organisation number';
  return undefined;
}

interface PersonState {
  person_id: string;
  status: 'ACTIVE' | 'DELETED';
  reserved: boolean;
  reserved_at: string | null;
  reservation_updated_at: string | null;
  language: string | null;
  language_updated_at: string | null;
  email: string | null;
  email_updated_at: string | null;
  email_verified_at: string | null;
  mobile: string | null;
  mobile_updated_at: string | null;
  mobile_verified_at: string | null;
}

const iso = (d: Date | string | null): string | null => (d === null ? null : new Date(d).toISOString());

function merge(old: PersonState | undefined, rec: ImportRecord, now: string): PersonState {
  const s: PersonState = old
    ? { ...old }
    : {
        person_id: rec.personId,
        status: 'ACTIVE',
        reserved: false,
        reserved_at: null,
        reservation_updated_at: null,
        language: null,
        language_updated_at: null,
        email: null,
        email_updated_at: null,
        email_verified_at: null,
        mobile: null,
        mobile_updated_at: null,
        mobile_verified_at: null,
      };
  if (rec.status !== undefined) s.status = rec.status;
  if (rec.reserved !== undefined && rec.reserved !== s.reserved) {
    s.reserved = rec.reserved;
    s.reservation_updated_at = iso(rec.reservedAt ?? now);
    s.reserved_at = rec.reserved ? s.reservation_updated_at : null;
  }
  if (rec.language !== undefined && rec.language !== s.language) {
    s.language = rec.language;
    s.language_updated_at = iso(rec.languageUpdatedAt ?? now);
  }
  for (const kind of ['email', 'mobile'] as const) {
    const value = rec[kind];
    if (value === undefined) continue;
    const updatedAt = rec[`${kind}UpdatedAt`];
    const verifiedAt = rec[`${kind}VerifiedAt`];
    if (value !== s[kind]) {
      s[kind] = value;
      s[`${kind}_updated_at`] = iso(updatedAt ?? now);
      s[`${kind}_verified_at`] = verifiedAt === undefined ? null : iso(verifiedAt);
    } else {
      if (updatedAt !== undefined) s[`${kind}_updated_at`] = iso(updatedAt);
      if (verifiedAt !== undefined) s[`${kind}_verified_at`] = iso(verifiedAt);
    }
  }
  return s;
}

const STATE_KEYS = [
  'status',
  'reserved',
  'reserved_at',
  'reservation_updated_at',
  'language',
  'language_updated_at',
  'email',
  'email_updated_at',
  'email_verified_at',
  'mobile',
  'mobile_updated_at',
  'mobile_verified_at',
] as const;

/**
 * Imports persons in one transaction, set-based (a handful of statements whatever the count):
 * persons are upserted, reservation changes go to history, mailboxes are registered and made
 * active (storage hears of each change through the outbox), and every person that actually
 * changed enters the change feed once. Importing the same data again changes nothing.
 */
export async function importPersons(db: Kysely<Database>, records: readonly ImportRecord[], now: Date, actor = 'import', lines?: readonly number[]): Promise<ImportSummary> {
  const nowIso = now.toISOString();
  const lineOf = (i: number) => lines?.[i] ?? i + 1;
  return db.transaction().execute(async (trx) => {
    const ids = records.map((r) => r.personId);
    const existing = await sql<PersonState>`
      select person_id, status, reserved, reserved_at, reservation_updated_at, language, language_updated_at,
             email, email_updated_at, email_verified_at, mobile, mobile_updated_at, mobile_verified_at
        from persons where person_id = any(${sql.val(ids)}::text[]) for update`.execute(trx);
    const old = new Map(existing.rows.map((r) => [r.person_id, normaliseState(r)]));

    const write: PersonState[] = [];
    const reservations: { person_id: string; reserved: boolean }[] = [];
    const changes: ChangeEntry[] = [];
    let created = 0;
    let updated = 0;
    for (const rec of records) {
      const before = old.get(rec.personId);
      const after = merge(before, rec, nowIso);
      if (before && STATE_KEYS.every((k) => before[k] === after[k])) continue;
      write.push(after);
      if (before) updated++;
      else created++;
      if ((before?.reserved ?? false) !== after.reserved) reservations.push({ person_id: after.person_id, reserved: after.reserved });
      changes.push({ personId: after.person_id, kind: 'import' });
    }
    if (write.length > 0) {
      await sql`
        insert into persons (person_id, status, reserved, reserved_at, reservation_updated_at, language, language_updated_at,
                             email, email_updated_at, email_verified_at, mobile, mobile_updated_at, mobile_verified_at, created_at, updated_at)
        select r.person_id, r.status, r.reserved, r.reserved_at, r.reservation_updated_at, r.language, r.language_updated_at,
               r.email, r.email_updated_at, r.email_verified_at, r.mobile, r.mobile_updated_at, r.mobile_verified_at, ${now}, ${now}
          from jsonb_to_recordset(${JSON.stringify(write)}::jsonb) as r(
            person_id text, status text, reserved boolean, reserved_at timestamptz, reservation_updated_at timestamptz,
            language text, language_updated_at timestamptz, email text, email_updated_at timestamptz, email_verified_at timestamptz,
            mobile text, mobile_updated_at timestamptz, mobile_verified_at timestamptz)
        on conflict (person_id) do update set
          status = excluded.status, reserved = excluded.reserved, reserved_at = excluded.reserved_at,
          reservation_updated_at = excluded.reservation_updated_at, language = excluded.language,
          language_updated_at = excluded.language_updated_at, email = excluded.email, email_updated_at = excluded.email_updated_at,
          email_verified_at = excluded.email_verified_at, mobile = excluded.mobile, mobile_updated_at = excluded.mobile_updated_at,
          mobile_verified_at = excluded.mobile_verified_at, updated_at = excluded.updated_at`.execute(trx);
    }
    if (reservations.length > 0) {
      await trx
        .insertInto('reservation_history')
        .values(reservations.map((r) => ({ ...r, actor, changed_at: now })))
        .execute();
    }

    const mailboxRecs = records.map((r, i) => ({ r, line: lineOf(i) })).filter((x) => x.r.mailbox !== undefined);
    const activated = mailboxRecs.length > 0 ? await importMailboxes(trx, mailboxRecs, actor, now, changes) : 0;

    const unique = new Map(changes.map((c) => [c.personId, c]));
    await recordChanges(trx, [...unique.values()]);
    return { received: records.length, created, updated, unchanged: records.length - created - updated, mailboxesActivated: activated };
  });
}

function normaliseState(r: PersonState): PersonState {
  const out = { ...r };
  for (const k of ['reserved_at', 'reservation_updated_at', 'language_updated_at', 'email_updated_at', 'email_verified_at', 'mobile_updated_at', 'mobile_verified_at'] as const) {
    out[k] = iso(r[k]);
  }
  return out;
}

async function importMailboxes(trx: Trx, items: { r: ImportRecord; line: number }[], actor: string, now: Date, changes: ChangeEntry[]): Promise<number> {
  const orgnrs = [...new Set(items.map((x) => x.r.mailbox!.providerOrgnr))];
  const providers = await trx.selectFrom('providers').select(['orgnr', 'kind', 'status']).where('orgnr', 'in', orgnrs).execute();
  const usable = new Set(providers.filter((p) => p.kind === 'digital' && p.status === 'active').map((p) => p.orgnr));
  const errors: ImportError[] = items
    .filter((x) => !usable.has(x.r.mailbox!.providerOrgnr))
    .map((x) => ({ line: x.line, message: 'mailbox.providerOrgnr is not an active digital provider' }));

  const persons = items.map((x) => x.r.personId);
  const provs = items.map((x) => x.r.mailbox!.providerOrgnr);
  const addrs = items.map((x) => x.r.mailbox!.address);
  const src = sql`select * from unnest(${sql.val(persons)}::text[], ${sql.val(provs)}::text[], ${sql.val(addrs)}::text[]) as s(person_id, provider_orgnr, address)`;
  // Existing mailboxes that share the address, or that the person holds open at the same provider.
  const clashes = await sql<{ person_id: string; provider_orgnr: string; address: string; m_person: string; m_address: string; active: boolean; closed: boolean }>`
    select s.person_id, s.provider_orgnr, s.address, m.person_id as m_person, m.address as m_address, m.active, m.closed_at is not null as closed
      from (${src}) s
      join mailboxes m on m.provider_orgnr = s.provider_orgnr
                      and (m.address = s.address or (m.person_id = s.person_id and m.closed_at is null))`.execute(trx);
  const lineByPerson = new Map(items.map((x) => [x.r.personId, x.line]));
  const alreadyActive = new Set<string>();
  for (const c of clashes.rows) {
    const line = lineByPerson.get(c.person_id)!;
    if (c.m_address === c.address && c.m_person !== c.person_id) errors.push({ line, message: 'the mailbox address belongs to another person' });
    else if (c.m_address !== c.address) errors.push({ line, message: 'the person has another open mailbox at this provider' });
    else if (c.active) alreadyActive.add(c.person_id);
  }
  if (errors.length > 0) {
    throw new Problem(registryProblems.INVALID_IMPORT, `${errors.length} mailbox line(s) cannot be applied`, { errors: errors.sort((a, b) => a.line - b.line).slice(0, MAX_ERRORS) });
  }
  const todo = items.filter((x) => !alreadyActive.has(x.r.personId));
  if (todo.length === 0) return 0;
  const tPersons = todo.map((x) => x.r.personId);
  const tSrc = sql`select * from unnest(${sql.val(tPersons)}::text[], ${sql.val(todo.map((x) => x.r.mailbox!.providerOrgnr))}::text[], ${sql.val(todo.map((x) => x.r.mailbox!.address))}::text[]) as s(person_id, provider_orgnr, address)`;
  const deactivated = await sql<MailboxRef>`
    update mailboxes m set active = false, updated_at = ${now}
      from (${tSrc}) s
     where m.person_id = s.person_id and m.active
    returning m.id, m.person_id, m.provider_orgnr, m.address`.execute(trx);
  await mailboxHistory(trx, deactivated.rows, 'deactivated', actor, now);
  const activated = await sql<MailboxRef & { created: boolean }>`
    insert into mailboxes (person_id, provider_orgnr, address, active, created_at, updated_at)
    select s.person_id, s.provider_orgnr, s.address, true, ${now}, ${now} from (${tSrc}) s
    on conflict (provider_orgnr, address) do update set active = true, closed_at = null, updated_at = excluded.updated_at
    returning id, person_id, provider_orgnr, address, (xmax = 0) as created`.execute(trx);
  await mailboxHistory(trx, activated.rows.filter((m) => m.created), 'registered', actor, now);
  await mailboxHistory(trx, activated.rows, 'activated', actor, now);
  await enqueue(
    trx,
    activated.rows.map((m) => ({ queue: 'storage', name: 'mailbox-changed', data: { personId: m.person_id, providerOrgnr: m.provider_orgnr, mailboxAddress: m.address } })),
  );
  for (const m of activated.rows) changes.push({ personId: m.person_id, kind: 'mailbox' });
  return activated.rows.length;
}
