import { sql } from 'kysely';
import { Problem } from '../../shared/errors/problem.js';
import { appendEvent } from '../../shared/evidence/events.js';
import type { StorageContext } from '../../shared/storage/context.js';
import { ensureEnvelopes, type Envelope, type EnvelopeTarget } from './envelopes.js';
import { storageProblems } from './problems.js';

/** Why the hub itself gave up on a delivery (the ERROR receipt's `reason`, the metric's label). */
export const UNDELIVERABLE_REASON = 'CERTIFICATE_UNUSABLE';

export interface ListingTarget extends EnvelopeTarget {
  messageId: string;
  senderOrgnr: string;
}

export type Enveloped<D> = { delivery: D; envelope: Envelope } | { delivery: D; failed: string } | { delivery: D; error: unknown };

export interface ListingHooks {
  /** A delivery the hub gave up on (operators count these). */
  onUndeliverable?(reason: string): void;
  /** Something went wrong for one delivery that may work next time (its lease was released). */
  onError?(deliveryId: string, err: unknown): void;
}

/**
 * The hub cannot encrypt for the recipient (no certificate, not RSA, expired since it was
 * registered): no retry will change that until someone registers a new certificate, and a
 * provider's listing must not fail for it. The delivery becomes FAILED (out of every listing)
 * and the sender gets an ERROR receipt saying why, in one transaction. Already moved on
 * (acknowledged, re-addressed, failed by a concurrent listing): nothing happens.
 */
export async function failUndeliverable(ctx: StorageContext, d: ListingTarget, detail: string): Promise<boolean> {
  return ctx.db.transaction().execute(async (trx) => {
    const failed = await trx
      .updateTable('deliveries')
      .set({ state: 'FAILED', leased_until: null, updated_at: sql<Date>`now()` as unknown as Date })
      .where('id', '=', d.id)
      .where('provider_orgnr', '=', d.providerOrgnr)
      .where('state', '=', 'READY')
      .returning('id')
      .executeTakeFirst();
    if (!failed) return false;
    await appendEvent(trx, ctx.hub, {
      messageId: d.messageId,
      senderOrgnr: d.senderOrgnr,
      type: 'ERROR',
      data: { reason: UNDELIVERABLE_REASON, errorType: 'SERVER', deliveryId: d.id, providerOrgnr: d.providerOrgnr, detail },
    });
    return true;
  });
}

/** Gives leased deliveries back at once, so an error for them hides them from no listing. */
export async function releaseLeases(ctx: StorageContext, deliveries: readonly Pick<EnvelopeTarget, 'id' | 'providerOrgnr'>[]): Promise<void> {
  if (deliveries.length === 0) return;
  await ctx.db
    .updateTable('deliveries')
    .set({ leased_until: null })
    .where('id', 'in', deliveries.map((d) => d.id))
    .where('provider_orgnr', '=', deliveries[0]!.providerOrgnr)
    .where('state', '=', 'READY')
    .execute();
}

/**
 * Deliveries left out of a listing, each with why: an unusable certificate fails the delivery
 * (failUndeliverable, counted through hooks.onUndeliverable); any other error, which may pass, is
 * reported through hooks.onError, and with `leased` their leases are released first (one
 * statement for all; best effort, else they run out).
 */
export async function leftOut<D extends ListingTarget>(ctx: StorageContext, ds: readonly D[], errors: readonly unknown[], hooks: ListingHooks, opts: { leased: boolean }): Promise<Enveloped<D>[]> {
  const results: Enveloped<D>[] = [];
  for (let i = 0; i < ds.length; i++) {
    const d = ds[i]!;
    const err = errors[i];
    if (err instanceof Problem && err.problemType === storageProblems.CERTIFICATE_UNUSABLE) {
      const detail = err.detail ?? err.problemType.title;
      try {
        if (await failUndeliverable(ctx, d, detail)) hooks.onUndeliverable?.(UNDELIVERABLE_REASON);
        results.push({ delivery: d, failed: detail });
      } catch (failing) {
        results.push({ delivery: d, error: failing });
      }
    } else results.push({ delivery: d, error: err });
  }
  const errored = results.filter((r): r is Extract<Enveloped<D>, { error: unknown }> => 'error' in r);
  if (opts.leased && errored.length > 0) await releaseLeases(ctx, errored.map((r) => r.delivery)).catch(() => undefined);
  for (const r of errored) hooks.onError?.(r.delivery.id, r.error);
  return results;
}

/**
 * The envelopes of leased deliveries (ensureEnvelopes: a few statements for all), never
 * throwing: those that get none are left out (leftOut), their leases released.
 */
export async function envelopesOrFail<D extends ListingTarget>(ctx: StorageContext, ds: readonly D[], hooks: ListingHooks): Promise<Enveloped<D>[]> {
  const outcomes = await ensureEnvelopes(ctx, ds);
  const results: Enveloped<D>[] = new Array(ds.length);
  const bad: number[] = [];
  outcomes.forEach((o, i) => {
    if ('envelope' in o) results[i] = { delivery: ds[i]!, envelope: o.envelope };
    else bad.push(i);
  });
  const settled = await leftOut(ctx, bad.map((i) => ds[i]!), bad.map((i) => (outcomes[i] as { error: unknown }).error), hooks, { leased: true });
  bad.forEach((i, k) => (results[i] = settled[k]!));
  return results;
}
