import { sql } from 'kysely';
import type { NotificationContext } from './context.js';
import { Group } from './group.js';

/** Why a claim is no longer ours. */
export type LeaseLoss = 'taken-over' | 'not-renewed';

export class LeaseLostError extends Error {
  constructor(readonly why: LeaseLoss) {
    super(why === 'taken-over' ? 'claim taken over by another worker' : 'claim lease could not be renewed');
    this.name = 'LeaseLostError';
  }
}

export interface LeaseHold {
  /** Rejects with LeaseLostError once the claim is lost; never resolves. */
  readonly lost: Promise<never>;
  /** Set once the claim is lost: the work must not start anything new for it. */
  isLost(): LeaseLoss | undefined;
  stop(): void;
}

interface Claim {
  id: string;
  token: string;
}

/**
 * Pushes `claimed_at` forward for every claim still ours (same token, still SENDING), in one
 * statement for all the claims a process holds; false for a claim someone else took over.
 */
async function renewBatch(ctx: NotificationContext, items: Claim[]): Promise<boolean[]> {
  const { rows } = await sql<{ id: string; claim_token: string }>`
    update notification_attempts a set claimed_at = now()
    from unnest(${sql.val(items.map((i) => i.id))}::uuid[], ${sql.val(items.map((i) => i.token))}::uuid[]) as t(id, token)
    where a.id = t.id and a.claim_token = t.token and a.state = 'SENDING'
    returning a.id, a.claim_token`.execute(ctx.db);
  const kept = new Set(rows.map((r) => `${r.id}/${r.claim_token}`));
  return items.map((i) => kept.has(`${i.id}/${i.token}`));
}

const renewals = new WeakMap<NotificationContext, Group<Claim, boolean>>();

function renewalGroup(ctx: NotificationContext): Group<Claim, boolean> {
  let g = renewals.get(ctx);
  if (!g) {
    g = new Group((items) => renewBatch(ctx, items), 500);
    renewals.set(ctx, g);
  }
  return g;
}

/**
 * Keeps a claim alive while its worker works on it: without this a send slower than the lease
 * (a slow peer, or a starved machine) is taken over while it is still in progress and the alert
 * goes out twice. Renewed every third of the lease; the claim counts as lost when a renewal finds
 * another token, or when no renewal has succeeded for two thirds of the lease (the database away),
 * which leaves a third of the lease for the worker to give up before anyone may take over.
 * `claimedAt` is real time taken before the claim statement, so the estimate errs on the early side.
 */
export function holdLease(ctx: NotificationContext, claim: Claim, claimedAt: number, leaseMs = ctx.config.NOTIFY_CLAIM_LEASE_MS): LeaseHold {
  let renewedAt = claimedAt;
  let loss: LeaseLoss | undefined;
  let inFlight = false;
  let stopped = false;
  let fail!: (err: LeaseLostError) => void;
  const lost = new Promise<never>((_, reject) => (fail = reject));
  // Nobody may be listening (the work finished first); the rejection is not an error then.
  lost.catch(() => undefined);
  const lose = (why: LeaseLoss) => {
    if (stopped) return;
    stopped = true;
    loss = why;
    clearInterval(timer);
    fail(new LeaseLostError(why));
  };
  const tick = () => {
    if (Date.now() - renewedAt > (leaseMs * 2) / 3) return lose('not-renewed');
    if (inFlight) return;
    inFlight = true;
    const started = Date.now();
    renewalGroup(ctx)
      .add(claim)
      .then((mine) => {
        if (mine) renewedAt = started;
        else lose('taken-over');
      })
      .catch(() => undefined) // the next tick judges from renewedAt
      .finally(() => (inFlight = false));
  };
  const timer = setInterval(tick, Math.max(50, Math.floor(leaseMs / 3)));
  return {
    lost,
    isLost: () => loss,
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
