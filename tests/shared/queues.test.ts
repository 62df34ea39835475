import t from 'tap';
import { createQueueFactory } from '../../shared/queue/queues.js';
import { testDatabase } from '../helpers/database.js';
import { queueBackends, testQueues } from '../helpers/queues.js';

t.test('CI runs the Redis backend', async (t) => {
  if (process.env.CI === 'true') t.ok(queueBackends().includes('redis'), 'CI=true must test on Redis');
  else t.pass('not in CI');
});

for (const kind of queueBackends()) {
  t.test(`queue factory on ${kind}`, async (t) => {
    const { url } = await testDatabase(t);
    const queues = testQueues(t, kind, url);
    t.equal(queues.kind, kind);
    await queues.ping();
    t.equal(queues.queue('a'), queues.queue('a'), 'one Queue object per name');

    const results: number[] = [];
    const done = new Promise<void>((resolve) => {
      queues.worker<{ n: number }>(
        'squares',
        async (job) => {
          results.push(job.data.n * job.data.n);
          if (results.length === 5) resolve();
          return job.data.n;
        },
        { concurrency: 2 },
      );
    });
    await queues.queue<{ n: number }>('squares').addBulk([1, 2, 3, 4, 5].map((n) => ({ name: 'sq', data: { n } })));
    await done;
    t.same(results.sort((a, b) => a - b), [1, 4, 9, 16, 25]);

    await t.test('namespaces keep tests (and deployments) apart', async (t) => {
      const other = testQueues(t, kind, url);
      await other.queue('squares').add('sq', { n: 9 });
      t.equal(await other.queue('squares').count(), 1);
      t.equal(await queues.queue('squares').getJobCountByTypes('waiting'), 0);
    });
  });
}

t.test('ping fails when the backend is unreachable', async (t) => {
  const pgDown = createQueueFactory({ databaseUrl: 'postgres://nobody@127.0.0.1:1/none', prefix: 'down' });
  t.teardown(() => pgDown.close().catch(() => undefined));
  await t.rejects(Promise.race([pgDown.ping(), new Promise((_, r) => setTimeout(() => r(new Error('timeout')), 5000))]));
  if (process.env.TEST_REDIS_URL) {
    const redisDown = createQueueFactory({ redisUrl: 'redis://127.0.0.1:1', databaseUrl: 'postgres://x@127.0.0.1:1/x', prefix: 'down' });
    t.teardown(() => redisDown.close().catch(() => undefined));
    await t.rejects(redisDown.ping());
  }
});
