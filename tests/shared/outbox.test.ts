import t from 'tap';
import { enqueue, outboxJobId, relayBatch, startOutboxRelay } from '../../shared/outbox/outbox.js';
import { testDatabase } from '../helpers/database.js';
import { queueBackends, testQueues } from '../helpers/queues.js';

for (const kind of queueBackends()) {
  t.test(`outbox on ${kind}`, async (t) => {
    const { db, url } = await testDatabase(t);
    const queues = testQueues(t, kind, url);

    await t.test('a job exists only if its transaction commits', async (t) => {
      await db.kysely
        .transaction()
        .execute(async (trx) => {
          await enqueue(trx, { queue: 'work', name: 'lost', data: { n: 0 } });
          throw new Error('rollback');
        })
        .catch(() => undefined);
      const [id] = await db.kysely.transaction().execute((trx) => enqueue(trx, { queue: 'work', name: 'kept', data: { n: 1 } }));
      t.equal(await relayBatch(db.kysely, queues), 1, 'only the committed row is relayed');
      const job = await queues.queue('work').getJob(outboxJobId(id!));
      t.same(job?.data, { n: 1 });
      t.equal(job?.name, 'kept');
      t.equal(await queues.queue('work').count(), 1);
    });

    await t.test('relaying the same row twice (crash before commit) creates one job', async (t) => {
      const [id] = await enqueue(db.kysely, { queue: 'dup', name: 'x', data: {} });
      // Simulate a relay that added the job but died before marking the row relayed.
      await queues.queue('dup').add('x', {}, { jobId: outboxJobId(id!) });
      t.equal(await relayBatch(db.kysely, queues), 1);
      t.equal(await queues.queue('dup').count(), 1, 'BullMQ ignores the second add with the same jobId');
      t.equal(await relayBatch(db.kysely, queues), 0, 'nothing left to relay');
    });

    await t.test('the running relay delivers to a worker, woken by NOTIFY', async (t) => {
      const seen: unknown[] = [];
      const done = new Promise<void>((resolve) => {
        queues.worker('live', async (job) => {
          seen.push(job.data);
          if (seen.length === 3) resolve();
        });
      });
      const relay = startOutboxRelay({ db: db.kysely, pool: db.pool, queues, logger: { warn: () => undefined }, pollMs: 60_000 });
      t.teardown(() => relay.stop());
      t.equal(await relay.listening, true, 'the relay listens (control point: no sleep before the NOTIFY)');
      await db.kysely.transaction().execute((trx) =>
        enqueue(trx, [1, 2, 3].map((n) => ({ queue: 'live', name: 'n', data: { n } }))),
      );
      await done;
      t.same(seen.map((d) => (d as { n: number }).n).sort(), [1, 2, 3]);
    });
  });
}
