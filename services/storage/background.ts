import type { ServiceDeps } from '../../shared/app/deps.js';
import type { Background } from '../../shared/runtime/service-module.js';
import { storageContext } from '../../shared/storage/context.js';
import { readdress, type MailboxChanged } from './deliveries.js';
import { purgeExpired } from './retention.js';

export const STORAGE_QUEUE = 'storage';

/**
 * The storage service's work beside HTTP: re-addressing pending deliveries when the registry
 * reports a mailbox change (queue `storage`, job `mailbox-changed`), and the retention sweep.
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
      .then((r) => {
        if (r.purged || r.abandoned) log?.info(r, 'retention sweep');
      })
      .catch((err: unknown) => log?.warn({ err }, 'retention sweep failed; retrying next period'));
  };
  const timer = setInterval(sweep, deps.config.RETENTION_SWEEP_SECONDS * 1000);
  timer.unref();
  sweep();

  return {
    async stop() {
      clearInterval(timer);
      await worker.close();
      await running;
    },
  };
}
