import { sql } from 'kysely';
import { recipientFromRow, recipientsQuery, type Recipient, type RecipientRow } from '../../../shared/registry/recipients.js';
import type { StoredAnswer } from '../idempotency.js';

/** What intake reads about a letter before (and again at) its commit. */
export interface LookupItem {
  org: string;
  key: string;
  /** The advisory lock name of the key (idempotency in flight). */
  lockName: string;
  senderReference: string | null;
  personId: string;
}

export interface LookupRow {
  /** Whether the in-flight lock was taken (only when asked for, inside a transaction). */
  locked: boolean | null;
  /** The key's stored answer, when it has a live one. */
  answer: StoredAnswer | null;
  /** Another letter of the sender with the same senderReference. */
  dup: string | null;
  recipient: RecipientRow | null;
}

export const lockNameOf = (org: string, key: string): string => `idempotency:${org}:${key}`;

/**
 * One set-based statement for many letters: per letter (in order) the key's live answer, a
 * letter with the same senderReference and the recipient's registry row; with `lock`, also a
 * transaction advisory lock on the key (non-blocking: false means another transaction is
 * committing a letter under that key right now, i.e. in flight). The text does not depend on
 * the number of letters, so it is prepared once per connection.
 */
export function lookupSql(items: readonly LookupItem[], lock: boolean) {
  const col = <K extends keyof LookupItem>(k: K) => sql.val(items.map((i) => i[k]));
  const persons = [...new Set(items.map((i) => i.personId))];
  return sql<LookupRow>`
    with r as (${recipientsQuery(persons)})
    select ${lock ? sql`pg_try_advisory_xact_lock(hashtextextended(i.lock, 0))` : sql`null::boolean`} as locked,
           (select json_build_object('requestHash', k.request_hash, 'messageId', k.message_id, 'response', k.response)
              from idempotency_keys k where k.sender_orgnr = i.org and k.key = i.key and k.expires_at > now()) as answer,
           (select m.id from messages m where m.sender_orgnr = i.org and m.sender_reference = i.ref) as dup,
           (select to_jsonb(r) - 'mailbox_certificate' from r where r.person_id = i.person) as recipient
      from unnest(${col('org')}::text[], ${col('key')}::text[], ${col('lockName')}::text[], ${col('senderReference')}::text[], ${col('personId')}::text[])
        with ordinality as i(org, key, lock, ref, person, n)
     order by i.n`;
}

/** The recipient of a lookup row (a person the registry does not know is NOT_REGISTERED). */
export function recipientOf(row: LookupRow, personId: string, now: Date): Recipient {
  return row.recipient
    ? recipientFromRow({ ...row.recipient, mailbox_certificate: null }, now)
    : { personId, status: 'NOT_REGISTERED', reserved: false, language: null, canNotify: false };
}
