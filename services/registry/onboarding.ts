import type { Kysely } from 'kysely';
import type { Database } from '../../shared/db/database.js';
import { Problem } from '../../shared/errors/problem.js';
import { isValidOrgnr } from '../../shared/ids/orgnr.js';
import { recordProviderChanges } from './changes.js';
import { registryProblems } from './problems.js';
import { acceptCertificate } from './provider-mailboxes.js';

export type OrgStatus = 'active' | 'suspended';

export function requireOrgnr(orgnr: string): void {
  if (!isValidOrgnr(orgnr)) throw new Problem(registryProblems.INVALID_ORGNR, 'An organisation number has 9 digits with a valid mod-11 check digit', { orgnr });
}

const isUniqueViolation = (err: unknown): boolean => (err as { code?: string }).code === '23505';

export interface SenderView {
  orgnr: string;
  name: string;
  status: OrgStatus;
  createdAt: Date;
  updatedAt: Date;
}

const senderColumns = ['orgnr', 'name', 'status', 'created_at as createdAt', 'updated_at as updatedAt'] as const;

export async function createSender(db: Kysely<Database>, input: { orgnr: string; name: string }, now: Date): Promise<SenderView> {
  requireOrgnr(input.orgnr);
  try {
    return await db
      .insertInto('senders')
      .values({ orgnr: input.orgnr, name: input.name, created_at: now, updated_at: now })
      .returning(senderColumns)
      .executeTakeFirstOrThrow();
  } catch (err) {
    if (isUniqueViolation(err)) throw new Problem(registryProblems.SENDER_EXISTS, 'Use PATCH to change it');
    throw err;
  }
}

export async function updateSender(db: Kysely<Database>, orgnr: string, input: { name?: string | undefined; status?: OrgStatus | undefined }, now: Date): Promise<SenderView> {
  const row = await db
    .updateTable('senders')
    .set({ ...(input.name === undefined ? {} : { name: input.name }), ...(input.status === undefined ? {} : { status: input.status }), updated_at: now })
    .where('orgnr', '=', orgnr)
    .returning(senderColumns)
    .executeTakeFirst();
  if (!row) throw new Problem(registryProblems.SENDER_NOT_FOUND, 'No sender with this organisation number');
  return row;
}

export async function listSenders(db: Kysely<Database>): Promise<SenderView[]> {
  return db.selectFrom('senders').select(senderColumns).orderBy('name').execute();
}

export interface ProviderView {
  orgnr: string;
  name: string;
  kind: 'digital' | 'print';
  status: OrgStatus;
  certificate: string | null;
  createdAt: Date;
  updatedAt: Date;
}

type ProviderRow = { orgnr: string; name: string; kind: 'digital' | 'print'; status: OrgStatus; certificate: Buffer | null; created_at: Date; updated_at: Date };
const toProviderView = (p: ProviderRow): ProviderView => ({
  orgnr: p.orgnr,
  name: p.name,
  kind: p.kind,
  status: p.status,
  certificate: p.certificate ? p.certificate.toString('base64') : null,
  createdAt: p.created_at,
  updatedAt: p.updated_at,
});

export async function createProvider(
  db: Kysely<Database>,
  input: { orgnr: string; name: string; kind: 'digital' | 'print'; certificate?: string | undefined },
  now: Date,
): Promise<ProviderView> {
  requireOrgnr(input.orgnr);
  if (input.kind === 'digital' && input.certificate === undefined) {
    throw new Problem(registryProblems.CERTIFICATE_REQUIRED, 'Send the provider encryption certificate (PEM or base64 DER)');
  }
  const certificate = input.certificate === undefined ? null : acceptCertificate(input.certificate, now);
  try {
    const row = await db
      .insertInto('providers')
      .values({ orgnr: input.orgnr, name: input.name, kind: input.kind, certificate, created_at: now, updated_at: now })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toProviderView(row);
  } catch (err) {
    if (isUniqueViolation(err)) throw new Problem(registryProblems.PROVIDER_EXISTS, 'Use PATCH to change it');
    throw err;
  }
}

/**
 * Renames, suspends or reactivates a provider. Suspension hides its mailboxes from lookups
 * (persons fall back to print), so every person with an active mailbox there enters the feed.
 */
export async function updateProvider(db: Kysely<Database>, orgnr: string, input: { name?: string | undefined; status?: OrgStatus | undefined }, now: Date): Promise<ProviderView> {
  return db.transaction().execute(async (trx) => {
    const before = await trx.selectFrom('providers').select('status').where('orgnr', '=', orgnr).forUpdate().executeTakeFirst();
    if (!before) throw new Problem(registryProblems.PROVIDER_NOT_FOUND, 'No provider with this organisation number');
    const row = await trx
      .updateTable('providers')
      .set({ ...(input.name === undefined ? {} : { name: input.name }), ...(input.status === undefined ? {} : { status: input.status }), updated_at: now })
      .where('orgnr', '=', orgnr)
      .returningAll()
      .executeTakeFirstOrThrow();
    if (input.status !== undefined && input.status !== before.status) await recordProviderChanges(trx, orgnr, 'mailbox', false);
    return toProviderView(row);
  });
}

export async function listProviders(db: Kysely<Database>): Promise<ProviderView[]> {
  return (await db.selectFrom('providers').selectAll().orderBy('orgnr').execute()).map(toProviderView);
}
