/**
 * Every queue of every service is visible and retryable by operators (issue 16.8): the expiry
 * queue of ingestion (nothing enqueues there any more, the sweep over deliveries.expires_at
 * replaced it, but `expire-delivery` jobs queued before an upgrade still run there and can fail)
 * and the re-addressing queue of storage in the admin API, Bull Board and /metrics, failed rows
 * naming their letter and never the person.
 */
import { randomUUID } from 'node:crypto';
import type { Job } from 'bullmq';
import t from 'tap';
import { service as ingestion } from '../../services/ingestion/app.js';
import { EXPIRY_JOB, INGESTION_QUEUE } from '../../services/ingestion/expiry.js';
import { service as storage } from '../../services/storage/app.js';
import { STORAGE_QUEUE } from '../../services/storage/background.js';
import { SCOPES } from '../../shared/auth/scopes.js';
import { testService } from '../helpers/service.js';
import { waitFor } from '../helpers/wait.js';

const PERSON = '01017012345';

const cases = [
  { mod: ingestion, queue: INGESTION_QUEUE, name: EXPIRY_JOB, data: () => ({ messageId: randomUUID(), deliveryId: randomUUID() }) },
  { mod: storage, queue: STORAGE_QUEUE, name: 'mailbox-changed', data: () => ({ personId: PERSON, providerOrgnr: null, mailboxAddress: null }) },
];

for (const c of cases) {
  t.test(`${c.mod.name}: the ${c.queue} queue is visible and retryable`, async (t) => {
    const svc = await testService(t, c.mod);
    const admin = { authorization: `Bearer ${await svc.token({ org: '974760673', scope: SCOPES.admin })}` };
    const data = c.data();
    const queue = svc.deps.queues.queue(c.queue);
    const job = await queue.add(c.name, data, { jobId: `test-${randomUUID()}` });
    // A worker of the test's own fails it once, as a job meeting a fault would.
    let fail = true;
    const worker = svc.deps.queues.worker(c.queue, async () => {
      if (fail) throw new Error('boom');
      return 'done';
    });
    t.teardown(() => worker.close());
    await waitFor('the job to fail', async () => (await (await queue.getJob(job.id!))?.getState()) === 'failed');
    fail = false;

    const stats = await svc.app.inject({ method: 'GET', url: '/v1/admin/queues', headers: admin });
    t.equal(stats.statusCode, 200);
    t.match((stats.json() as { queues: unknown[] }).queues, [{ name: c.queue, failed: 1 }]);
    const failed = await svc.app.inject({ method: 'GET', url: `/v1/admin/queues/${c.queue}/failed`, headers: admin });
    const rows = (failed.json() as { jobs: { id: string; messageId: string | null; failedReason: string }[] }).jobs;
    t.match(rows, [{ id: job.id, failedReason: 'boom', messageId: 'messageId' in data ? data.messageId : null }]);
    t.notMatch(failed.body, PERSON, 'no personId in the failed list');
    const metrics = (await svc.app.inject({ method: 'GET', url: '/metrics' })).body;
    t.match(metrics, new RegExp(`${c.mod.name}_queue_jobs\\{queue="${c.queue}",state="failed"[^}]*\\} 1`));
    const board = await svc.app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: admin });
    t.equal(board.statusCode, 200, 'Bull Board');
    t.ok((board.json() as { queues: { name: string }[] }).queues.some((q) => q.name === c.queue));
    t.equal((await svc.app.inject({ method: 'GET', url: '/admin/queues/api/queues' })).statusCode, 401, 'Bull Board needs the admin scope');

    const retry = await svc.app.inject({ method: 'POST', url: `/v1/admin/queues/${c.queue}/failed/${job.id}/retry`, headers: admin });
    t.equal(retry.statusCode, 200);
    await waitFor('the retried job to complete', async () => (await ((await queue.getJob(job.id!)) as Job | undefined)?.getState()) === 'completed');
    const again = await svc.app.inject({ method: 'POST', url: `/v1/admin/queues/${c.queue}/failed/${job.id}/retry`, headers: admin });
    t.equal(again.statusCode, 409);
    t.equal((again.json() as { type: string }).type, `https://postbud.dev/problems/${c.mod.name}/job-not-failed`);
    const missing = await svc.app.inject({ method: 'POST', url: `/v1/admin/queues/${c.queue}/failed/nope/retry`, headers: admin });
    t.equal(missing.statusCode, 404);
  });
}
