import type { FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from '../../shared/db/database.js';
import { clientOf } from '../../shared/auth/guards.js';
import { Problem } from '../../shared/errors/problem.js';
import { storageProblems } from './problems.js';

export const suspendedProblem = () =>
  new Problem(storageProblems.PROVIDER_SUSPENDED, 'A suspended provider can neither pull deliveries nor acknowledge or report on them');

/**
 * An onRequest hook for provider routes, after the scope guard: 403 for a suspended provider,
 * before the body is even read. An unregistered organisation passes (it simply has no deliveries).
 */
export function refuseSuspendedProvider(db: Kysely<Database>) {
  return async function providerNotSuspended(request: FastifyRequest): Promise<void> {
    const p = await db.selectFrom('providers').select('status').where('orgnr', '=', clientOf(request).org).executeTakeFirst();
    if (p?.status === 'suspended') throw suspendedProblem();
  };
}
