import type { FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { clientOf } from '../../shared/auth/guards.js';
import type { Database } from '../../shared/db/database.js';
import { Problem } from '../../shared/errors/problem.js';
import { CertificateError, checkEncryptionCertificate, decodeCertificate } from '../../shared/registry/certificate.js';
import { findProvider, type ProviderInfo } from '../../shared/registry/recipients.js';
import { recordChanges, recordProviderChanges, type ChangeEntry } from './changes.js';
import { activateMailbox, lockOrCreatePerson, mailboxChanged, mailboxHistory, type Trx } from './person-store.js';
import { registryProblems } from './problems.js';

/** Decodes and checks a certificate from a request, turning every fault into a 400 problem. */
export function acceptCertificate(input: string, now: Date): Buffer {
  try {
    return checkEncryptionCertificate(decodeCertificate(input), now).der;
  } catch (err) {
    if (err instanceof CertificateError) throw new Problem(registryProblems.INVALID_CERTIFICATE, err.message, { reason: err.reason });
    throw err;
  }
}

/** The calling organisation as an active digital provider, or 403. */
export async function requireActiveProvider(db: Kysely<Database> | Trx, orgnr: string): Promise<ProviderInfo> {
  const p = await findProvider(db, orgnr);
  if (!p) throw new Problem(registryProblems.PROVIDER_NOT_REGISTERED, 'Your organisation is not registered as a mailbox provider');
  if (p.status !== 'active') throw new Problem(registryProblems.PROVIDER_SUSPENDED, 'Your organisation is suspended as a provider');
  if (p.kind !== 'digital') throw new Problem(registryProblems.PROVIDER_NOT_DIGITAL, 'Print providers do not hold mailboxes');
  return p;
}

/**
 * An onRequest hook for provider routes, after the scope guard: 403 for a suspended provider,
 * before the body is read, on reads and writes alike.
 */
export function refuseSuspendedProvider(db: Kysely<Database>) {
  return async function providerNotSuspended(request: FastifyRequest): Promise<void> {
    const p = await findProvider(db, clientOf(request).org);
    if (p?.status === 'suspended') throw new Problem(registryProblems.PROVIDER_SUSPENDED, 'Your organisation is suspended as a provider');
  };
}

export interface MailboxView {
  id: string;
  personId: string;
  address: string;
  hasOwnCertificate: boolean;
  active: boolean;
  createdAt: Date;
  updatedAt: Date;
  closedAt: Date | null;
}

const viewColumns = ['id', 'person_id', 'address', 'certificate', 'active', 'created_at', 'updated_at', 'closed_at'] as const;
type ViewRow = { id: string; person_id: string; address: string; certificate: Buffer | null; active: boolean; created_at: Date; updated_at: Date; closed_at: Date | null };

const toView = (m: ViewRow): MailboxView => ({
  id: m.id,
  personId: m.person_id,
  address: m.address,
  hasOwnCertificate: m.certificate !== null,
  active: m.active,
  createdAt: m.created_at,
  updatedAt: m.updated_at,
  closedAt: m.closed_at,
});

async function ownMailbox(trx: Trx | Kysely<Database>, orgnr: string, id: string, lock: boolean) {
  // Another provider's mailbox is "not found": a provider cannot even learn that it exists.
  let q = trx.selectFrom('mailboxes').select([...viewColumns, 'provider_orgnr']).where('id', '=', id).where('provider_orgnr', '=', orgnr);
  if (lock) q = q.forUpdate();
  const m = await q.executeTakeFirst();
  if (!m) throw new Problem(registryProblems.MAILBOX_NOT_FOUND, 'You have no mailbox with this id');
  return m;
}

export async function getMailbox(db: Kysely<Database>, orgnr: string, id: string): Promise<MailboxView> {
  return toView(await ownMailbox(db, orgnr, id, false));
}

/**
 * A provider registers a mailbox a citizen created with it. It becomes the person's active
 * mailbox when the person has none; otherwise the citizen chooses. Registering the same address
 * for the same person again is idempotent (and reopens a closed one).
 */
export async function registerMailbox(
  db: Kysely<Database>,
  orgnr: string,
  input: { personId: string; address: string; certificate?: string | undefined },
  now: Date,
): Promise<{ mailbox: MailboxView; created: boolean }> {
  await requireActiveProvider(db, orgnr);
  const certificate = input.certificate === undefined ? null : acceptCertificate(input.certificate, now);
  const actor = `provider:${orgnr}`;
  return db.transaction().execute(async (trx) => {
    const changes: ChangeEntry[] = [];
    await lockOrCreatePerson(trx, input.personId, now, changes);
    const same = await trx.selectFrom('mailboxes').select([...viewColumns, 'provider_orgnr']).where('provider_orgnr', '=', orgnr).where('address', '=', input.address).executeTakeFirst();
    if (same && same.person_id !== input.personId) {
      throw new Problem(registryProblems.MAILBOX_ADDRESS_TAKEN, 'This address belongs to another person');
    }
    const open = await trx
      .selectFrom('mailboxes')
      .select('id')
      .where('provider_orgnr', '=', orgnr)
      .where('person_id', '=', input.personId)
      .where('closed_at', 'is', null)
      .where('address', '!=', input.address)
      .executeTakeFirst();
    if (open) throw new Problem(registryProblems.MAILBOX_EXISTS, 'Update or close the existing mailbox first', { mailboxId: open.id });

    let id: string;
    let created = false;
    if (same && same.closed_at === null) {
      return { mailbox: toView(same), created: false };
    } else if (same) {
      await trx.updateTable('mailboxes').set({ closed_at: null, certificate, updated_at: now }).where('id', '=', same.id).execute();
      await mailboxHistory(trx, [same], 'reopened', actor, now);
      id = same.id;
    } else {
      const row = await trx
        .insertInto('mailboxes')
        .values({ person_id: input.personId, provider_orgnr: orgnr, address: input.address, certificate, created_at: now, updated_at: now })
        .returning(['id', 'person_id', 'provider_orgnr', 'address'])
        .executeTakeFirstOrThrow();
      await mailboxHistory(trx, [row], 'registered', actor, now);
      id = row.id;
      created = true;
    }
    changes.push({ personId: input.personId, kind: 'mailbox' });
    const hasActive = await trx.selectFrom('mailboxes').select('id').where('person_id', '=', input.personId).where('active', '=', true).executeTakeFirst();
    if (!hasActive) await activateMailbox(trx, { id, person_id: input.personId, provider_orgnr: orgnr, address: input.address }, actor, now, changes);
    const view = toView(await ownMailbox(trx, orgnr, id, false));
    await recordChanges(trx, changes);
    return { mailbox: view, created };
  });
}

/** New address and/or certificate (null removes the mailbox's own certificate). */
export async function updateMailbox(
  db: Kysely<Database>,
  orgnr: string,
  id: string,
  input: { address?: string | undefined; certificate?: string | null | undefined },
  now: Date,
): Promise<MailboxView> {
  await requireActiveProvider(db, orgnr);
  const certificate = input.certificate === undefined || input.certificate === null ? input.certificate : acceptCertificate(input.certificate, now);
  return db.transaction().execute(async (trx) => {
    const peek = await ownMailbox(trx, orgnr, id, false);
    const changes: ChangeEntry[] = [];
    await lockOrCreatePerson(trx, peek.person_id, now, changes);
    const m = await ownMailbox(trx, orgnr, id, true);
    if (m.closed_at !== null) throw new Problem(registryProblems.MAILBOX_CLOSED, 'A closed mailbox cannot be changed');
    const address = input.address ?? m.address;
    if (address !== m.address) {
      const taken = await trx.selectFrom('mailboxes').select('id').where('provider_orgnr', '=', orgnr).where('address', '=', address).executeTakeFirst();
      if (taken) throw new Problem(registryProblems.MAILBOX_ADDRESS_TAKEN, 'This address is in use');
    }
    await trx
      .updateTable('mailboxes')
      .set({ address, ...(certificate === undefined ? {} : { certificate }), updated_at: now })
      .where('id', '=', id)
      .execute();
    await mailboxHistory(trx, [{ ...m, address }], 'updated', `provider:${orgnr}`, now);
    if (m.active && address !== m.address) await mailboxChanged(trx, m.person_id, { provider_orgnr: orgnr, address });
    changes.push({ personId: m.person_id, kind: certificate === undefined ? 'mailbox' : 'certificate' });
    const view = toView(await ownMailbox(trx, orgnr, id, false));
    await recordChanges(trx, changes);
    return view;
  });
}

/**
 * The account is gone (closed by the citizen, or after a death): the mailbox is closed and, if it
 * was the active one, the person has no active mailbox until they choose another.
 */
export async function closeMailbox(db: Kysely<Database>, orgnr: string, id: string, now: Date): Promise<MailboxView> {
  return db.transaction().execute(async (trx) => {
    const peek = await ownMailbox(trx, orgnr, id, false);
    await trx.selectFrom('persons').select('person_id').where('person_id', '=', peek.person_id).forUpdate().execute();
    const m = await ownMailbox(trx, orgnr, id, true);
    if (m.closed_at !== null) return toView(m);
    await trx.updateTable('mailboxes').set({ active: false, closed_at: now, updated_at: now }).where('id', '=', id).execute();
    await mailboxHistory(trx, [m], 'closed', `provider:${orgnr}`, now);
    if (m.active) await mailboxChanged(trx, m.person_id, null);
    const view = toView(await ownMailbox(trx, orgnr, id, false));
    await recordChanges(trx, [{ personId: m.person_id, kind: 'mailbox' }]);
    return view;
  });
}

/** The provider's new encryption certificate; every person it serves without an own certificate changes. */
export async function rotateProviderCertificate(db: Kysely<Database>, orgnr: string, certificateInput: string, now: Date): Promise<{ affectedPersons: number }> {
  await requireActiveProvider(db, orgnr);
  const certificate = acceptCertificate(certificateInput, now);
  return db.transaction().execute(async (trx) => {
    await trx.updateTable('providers').set({ certificate, updated_at: now }).where('orgnr', '=', orgnr).execute();
    const affectedPersons = await recordProviderChanges(trx, orgnr, 'certificate', true);
    return { affectedPersons };
  });
}
