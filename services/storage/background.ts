import type { ServiceDeps } from '../../shared/app/deps.js';
import type { Background } from '../../shared/runtime/service-module.js';
import { storageContext } from '../../shared/storage/context.js';
import { readdress, type MailboxChanged } from './deliveries.js';
import { sequenceAll } from '../../shared/evidence/log.js';
import { purgeEvidence, purgeExpired } from './retention.js';
import { failOverdueMoves } from './moves.js';

export const STORAGE_QUEUE = 'storage';

/**
 * The storage service's work beside HTTP: re-addressing pending deliveries when the registry
 * reports a mailbox change (queue `storage`, job `mailbox-changed`), the retention sweep, and
 * the evidence log's sequencer (every EVIDENCE_HEAD_SECONDS: new events become leaves, and a new
 * tree head is signed; docs/evidence.md).
 */
export async function startStorageBackground(deps: ServiceDeps): Promise<Background> {
  const ctx = storageContext(deps);
  const log = deps.logger;
  const worker = deps.queues.worker<MailboxChanged>(STORAGE_QUEUE, async (job) => {
    if (job.name !== 'mailbox-changed') return { ignored: job.name };
    const moved = await readdress(ctx, job.data);
    log?.info({ job: job.id, moved }, 'mailbox change applied to pending deliveries');
    return { moved };
  });

  let running: Promise<unknown> = Promise.resolve();
  const sweep = () => {
    running = purgeExpired(ctx, { graceHours: deps.config.PACKAGE_RETENTION_HOURS })
      .then(async (r) => {
        if (r.purged || r.abandoned) log?.info(r, 'retention sweep');
        if (deps.config.EVIDENCE_RETENTION_DAYS > 0) {
          const e = await purgeEvidence(ctx, { days: deps.config.EVIDENCE_RETENTION_DAYS });
          if (e.tombstones) log?.info(e, 'evidence retention: events replaced by signed tombstones');
        }
      })
      .catch((err: unknown) => log?.warn({ err }, 'retention sweep failed; retrying next period'));
  };
  const timer = setInterval(sweep, deps.config.RETENTION_SWEEP_SECONDS * 1000);
  timer.unref();
  sweep();

  let sequencing: Promise<unknown> = Promise.resolve();
  let sequencerBusy = false;
  const sequence = () => {
    if (sequencerBusy) return;
    sequencerBusy = true;
    sequencing = sequenceAll(ctx.db, ctx.hub)
      .then((r) => {
        if (r.added) log?.debug({ added: r.added, treeSize: r.head?.treeSize }, 'evidence log head signed');
      })
      .catch((err: unknown) => log?.warn({ err }, 'evidence sequencer failed; retrying next period'))
      .finally(() => {
        sequencerBusy = false;
      });
  };
  const sequencer = setInterval(sequence, deps.config.EVIDENCE_HEAD_SECONDS * 1000);
  sequencer.unref();
  sequence();
  // Moves whose old provider never answered end FAILED at their deadline (MOVE_TIMEOUT_SECONDS).
  let moving: Promise<unknown> = Promise.resolve();
  const moveSweep = () => {
    moving = failOverdueMoves(ctx)
      .then((n) => {
        if (n) log?.info({ moves: n }, 'overdue moves ended');
      })
      .catch((err: unknown) => log?.warn({ err }, 'move deadline sweep failed; retrying next period'));
  };
  const moveTimer = setInterval(moveSweep, deps.config.MOVE_SWEEP_SECONDS * 1000);
  moveTimer.unref();

  return {
    async stop() {
      clearInterval(timer);
      clearInterval(sequencer);
      clearInterval(moveTimer);
      await moving;
      await worker.close();
      await running;
      await sequencing;
    },
  };
}
