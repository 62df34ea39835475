import type { Selectable, Transaction } from 'kysely';
import type { Database } from '../../shared/db/database.js';
import type { PersonsTable } from '../../shared/db/tables/persons.js';
import { Problem } from '../../shared/errors/problem.js';
import { enqueue } from '../../shared/outbox/outbox.js';
import type { ChangeEntry } from './changes.js';
import { registryProblems } from './problems.js';

export type Trx = Transaction<Database>;
export type PersonRow = Selectable<PersonsTable>;

/**
 * The person's row, locked for the rest of the transaction, created (ACTIVE, nothing else set)
 * when the registry did not know the person: a citizen's first change or a provider's first
 * mailbox registers them. Changes to a DELETED person are refused.
 */
export async function lockOrCreatePerson(trx: Trx, personId: string, now: Date, changes: ChangeEntry[]): Promise<PersonRow> {
  const created = await trx
    .insertInto('persons')
    .values({ person_id: personId, created_at: now, updated_at: now })
    .onConflict((oc) => oc.column('person_id').doNothing())
    .returning('person_id')
    .executeTakeFirst();
  if (created) changes.push({ personId, kind: 'created' });
  const row = await trx.selectFrom('persons').selectAll().where('person_id', '=', personId).forUpdate().executeTakeFirstOrThrow();
  if (row.status === 'DELETED') throw new Problem(registryProblems.PERSON_DELETED, 'Changes to a deleted person are not accepted');
  return row;
}

export interface MailboxRef {
  id: string;
  person_id: string;
  provider_orgnr: string;
  address: string;
}

export type MailboxEvent = 'registered' | 'updated' | 'activated' | 'deactivated' | 'closed' | 'reopened';

export async function mailboxHistory(trx: Trx, rows: readonly MailboxRef[], event: MailboxEvent, actor: string, now: Date): Promise<void> {
  if (rows.length === 0) return;
  await trx
    .insertInto('mailbox_history')
    .values(rows.map((m) => ({ person_id: m.person_id, mailbox_id: m.id, provider_orgnr: m.provider_orgnr, address: m.address, event, actor, changed_at: now })))
    .execute();
}

/** Tells storage that the person's active mailbox is now this one (or none), in the caller's transaction. */
export async function mailboxChanged(trx: Trx, personId: string, mailbox: { provider_orgnr: string; address: string } | null): Promise<void> {
  await enqueue(trx, {
    queue: 'storage',
    name: 'mailbox-changed',
    data: { personId, providerOrgnr: mailbox?.provider_orgnr ?? null, mailboxAddress: mailbox?.address ?? null },
  });
}

/**
 * Makes `mailbox` the person's one active mailbox: deactivates the current one first (the partial
 * unique index allows one active per person), records history, and enqueues mailbox-changed.
 * The caller holds the person's row lock.
 */
export async function activateMailbox(trx: Trx, mailbox: MailboxRef, actor: string, now: Date, changes: ChangeEntry[]): Promise<void> {
  const previous = await trx
    .updateTable('mailboxes')
    .set({ active: false, updated_at: now })
    .where('person_id', '=', mailbox.person_id)
    .where('active', '=', true)
    .where('id', '!=', mailbox.id)
    .returning(['id', 'person_id', 'provider_orgnr', 'address'])
    .execute();
  await mailboxHistory(trx, previous, 'deactivated', actor, now);
  await trx.updateTable('mailboxes').set({ active: true, updated_at: now }).where('id', '=', mailbox.id).execute();
  await mailboxHistory(trx, [mailbox], 'activated', actor, now);
  await mailboxChanged(trx, mailbox.person_id, mailbox);
  changes.push({ personId: mailbox.person_id, kind: 'mailbox' });
}
