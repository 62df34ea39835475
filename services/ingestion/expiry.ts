import { sql, type Transaction } from 'kysely';
import type { Manifest } from '../../shared/crypto/asice.js';
import type { Db } from '../../shared/db/connect.js';
import type { Database } from '../../shared/db/database.js';
import { appendEvent } from '../../shared/evidence/events.js';
import { errorForLog } from '../../shared/logging/logger.js';
import type { StorageContext } from '../../shared/storage/context.js';
import { createDelivery } from '../../shared/storage/deliveries.js';
import { withdrawUnacknowledged } from '../../shared/storage/withdraw.js';
import type { PrintInstructions } from '../../shared/crypto/asice.js';
import { findPrintProvider } from '../../shared/registry/recipients.js';
import { startPollLoop } from '../../shared/runtime/poll-loop.js';

/**
 * The ingestion service's own queue. It carried one delayed expiry check per delivery (written
 * to the outbox with the letter); expiry is now the sweep below over `deliveries.expires_at`
 * and nothing enqueues `expire-delivery` any more. The worker stays for the jobs an existing
 * installation still has queued, so an upgrade loses none (running one for a delivery the sweep
 * already expired changes nothing).
 */
export const INGESTION_QUEUE = 'ingestion';
export const EXPIRY_JOB = 'expire-delivery';

export interface ExpiryJob {
  messageId: string;
  deliveryId: string;
}

export type ExpiryOutcome = 'acknowledged' | 'expired' | 'print';

/**
 * Runs when a delivery's expiry time has come. Acknowledged meanwhile: nothing to do. Otherwise
 * the delivery is withdrawn and either the letter goes to print (it carried a print fallback and
 * a print provider is active: a new delivery of the same sealed package, no re-encryption, which
 * expires in its turn) or it becomes EXPIRED with an ERROR receipt. One transaction; running it
 * twice changes nothing.
 */
export async function expireDelivery(db: Db, storage: StorageContext, job: ExpiryJob, expirySeconds: number): Promise<ExpiryOutcome> {
  return db.kysely.transaction().execute((trx) => expireDeliveryIn(trx, storage, job, expirySeconds));
}

/** expireDelivery in the caller's transaction (the sweep runs each delivery in a savepoint of its batch). */
export async function expireDeliveryIn(trx: Transaction<Database>, storage: StorageContext, job: ExpiryJob, expirySeconds: number): Promise<ExpiryOutcome> {
  const delivery = await withdrawUnacknowledged(trx, job.deliveryId);
  if (!delivery) return 'acknowledged';
  const message = await trx.selectFrom('messages').selectAll().where('id', '=', job.messageId).executeTakeFirstOrThrow();
  const printer = delivery.route === 'DIGITAL' && message.print ? await findPrintProvider(trx) : undefined;
  if (!printer) {
    await appendEvent(trx, storage.hub, {
      messageId: message.id,
      senderOrgnr: message.sender_orgnr,
      type: 'ERROR',
      data: {
        reason: 'EXPIRED',
        errorType: 'SERVER',
        deliveryId: delivery.id,
        providerOrgnr: delivery.provider_orgnr,
        detail: `not acknowledged by the provider within ${expirySeconds} seconds`,
      },
    });
    return 'expired';
  }
  await appendEvent(trx, storage.hub, {
    messageId: message.id,
    senderOrgnr: message.sender_orgnr,
    type: 'FALLBACK_TO_PRINT',
    data: { reason: 'EXPIRED', fromDeliveryId: delivery.id, fromProviderOrgnr: delivery.provider_orgnr, toProviderOrgnr: printer.orgnr },
  });
  const documents = message.documents.map(({ name, mime, size, sha256 }) => ({ name, mime, size, sha256 }));
  await createDelivery(trx, storage, {
    messageId: message.id,
    senderOrgnr: message.sender_orgnr,
    personId: message.person_id,
    route: 'PRINT',
    providerOrgnr: printer.orgnr,
    title: message.title,
    securityLevel: message.security_level as 3 | 4,
    availableAt: message.available_at,
    print: message.print as unknown as PrintInstructions,
    sealed: {
      packageId: delivery.package_id,
      manifestSha256: message.manifest_sha256,
      ciphertextSize: Number(delivery.package_size ?? 0),
      // Only the documents' hashes and sizes are read (for the SEALED event).
      manifest: { documents } as Manifest,
    },
    // The print provider gets the same time to acknowledge; the sweep takes it after that.
    expiresInSeconds: expirySeconds,
  });
  await trx.updateTable('messages').set({ route: 'PRINT', provider_orgnr: printer.orgnr }).where('id', '=', message.id).execute();
  return 'print';
}

/** Most deliveries one sweep takes (one transaction); a full sweep is followed by another at once. */
export const EXPIRY_SWEEP_LIMIT = 100;
/** A delivery whose expiry failed is looked at again this much later, so it cannot hold up the ones behind it. */
export const EXPIRY_RETRY_SECONDS = 300;

export interface SweepLogger {
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
}

export interface SweepOptions {
  expirySeconds: number;
  /** Take the deliveries due at this instant; the database's now() when absent (the clock `expires_at` was written with). */
  now?: Date;
  limit?: number;
  logger: SweepLogger;
}

export interface SweepResult {
  /** Due deliveries this sweep took (locked); others' locked ones were skipped. */
  claimed: number;
  expired: number;
  print: number;
  /** Taken but no longer pending when looked at under the lock (not expected: the selection already wants READY). */
  acknowledged: number;
  /** Ids of the deliveries whose expiry threw: rolled back alone, retried after EXPIRY_RETRY_SECONDS. */
  failed: string[];
}

/** What is logged of a failed expiry: the error's class (and a Postgres SQLSTATE or system code), never its message. */
function errorClassOf(err: unknown): { errorClass: string; code?: string } {
  const { type, code } = errorForLog(err);
  return { errorClass: type, ...(code ? { code } : {}) };
}

/**
 * One expiry sweep: the due deliveries still waiting for their provider's acknowledgement
 * (`state = 'READY' and expires_at <= now`, read from the partial index deliveries_expiry_due),
 * oldest first, at most `limit`, locked `FOR UPDATE SKIP LOCKED`, so several ingestion processes
 * sweeping at once take disjoint sets and none is expired twice. Each runs expireDeliveryIn in
 * its own savepoint of the sweep's transaction: one that throws is rolled back alone, logged
 * with its id and error class (never its message, which could quote data), and its
 * `expires_at` moved EXPIRY_RETRY_SECONDS on; the others commit. Tests call this with their
 * own `now` (the control point: no sleeping until a delivery is due).
 */
export async function sweepExpiredDeliveries(db: Db, storage: StorageContext, opts: SweepOptions): Promise<SweepResult> {
  const limit = opts.limit ?? EXPIRY_SWEEP_LIMIT;
  const now = opts.now ?? null;
  return db.kysely.transaction().execute(async (trx) => {
    const due = await trx
      .selectFrom('deliveries')
      .select(['id', 'message_id'])
      .where('state', '=', 'READY')
      .where('expires_at', '<=', sql<Date>`coalesce(${now}::timestamptz, now())`)
      .orderBy('expires_at')
      .limit(limit)
      .forUpdate()
      .skipLocked()
      .execute();
    const result: SweepResult = { claimed: due.length, expired: 0, print: 0, acknowledged: 0, failed: [] };
    for (const d of due) {
      await sql`savepoint expiry`.execute(trx);
      try {
        result[await expireDeliveryIn(trx, storage, { messageId: d.message_id, deliveryId: d.id }, opts.expirySeconds)]++;
      } catch (err) {
        await sql`rollback to savepoint expiry`.execute(trx);
        await trx
          .updateTable('deliveries')
          .set({ expires_at: sql<Date>`coalesce(${now}::timestamptz, now()) + make_interval(secs => ${EXPIRY_RETRY_SECONDS}::int)` })
          .where('id', '=', d.id)
          .execute();
        result.failed.push(d.id);
        opts.logger.warn({ deliveryId: d.id, ...errorClassOf(err) }, 'delivery expiry failed; retried later');
      }
      await sql`release savepoint expiry`.execute(trx);
    }
    if (result.expired + result.print > 0) opts.logger.info({ expired: result.expired, print: result.print }, 'deliveries expired');
    return result;
  });
}

/**
 * The sweep every `intervalMs` (EXPIRY_SWEEP_INTERVAL_MS), at once again while sweeps come back
 * full, until stopped. A failing sweep (the database gone) is logged and tried at the next interval.
 */
export function startExpirySweep(db: Db, storage: StorageContext, opts: { intervalMs: number; expirySeconds: number; limit?: number; logger: SweepLogger; clock?: () => Date }) {
  const limit = opts.limit ?? EXPIRY_SWEEP_LIMIT;
  return startPollLoop(
    async () => {
      const r = await sweepExpiredDeliveries(db, storage, { expirySeconds: opts.expirySeconds, limit, logger: opts.logger, now: opts.clock?.() });
      return r.claimed >= limit ? r.claimed : 0;
    },
    opts.intervalMs,
    opts.logger,
    'delivery expiry sweep failed; retrying',
  );
}
