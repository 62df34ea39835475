import t from 'tap';
import { testDatabase } from '../helpers/database.js';
import { runTs, servicePorts, waitForHttp } from '../helpers/processes.js';
import { testDataDir } from '../helpers/service.js';
import { demoMessage, describeAlerts } from '../../scripts/commands/demo.js';

t.test('the demo letter shows the default alerts: at delivery and on day 7', async (t) => {
  const message = demoMessage('01017000000');
  t.equal(message.notifications.repeatAfterDays, undefined, 'repeatAfterDays is left to its default');
  t.equal(describeAlerts(message.notifications), 'alerts: when delivered, then on day 7 unless opened (repeatAfterDays left out = default [0, 7])');
  t.equal(describeAlerts({ repeatAfterDays: [7] }), 'alerts: no alert at delivery; on day 7 unless opened (repeatAfterDays [7])', 'a list without 0 says there is no alert at delivery');
});

t.test('postbud demo runs one letter through a running postbud start', async (t) => {
  const { url } = await testDatabase(t);
  const dataDir = testDataDir(t);
  const { ports, env: portEnv } = await servicePorts();
  // NODE_ENV=test: start leaves the registry empty, so the demo's own seeding is what runs here
  // (tests/e2e/first-hour.test.ts covers the development start that seeds).
  const env = { NODE_ENV: 'test', DATABASE_URL: url, DATA_DIR: dataDir, QUEUE_PREFIX: 'e2e_demo', LOG_LEVEL: 'warn', ...portEnv };
  const before = runTs(t, 'scripts/cli.ts', ['demo'], env);
  t.equal((await before.exited).code, 1, 'without a running system it says what to do');
  t.match(before.output(), /npm start/);

  const system = runTs(t, 'scripts/cli.ts', ['start'], env);
  for (const port of ports) await waitForHttp(`http://127.0.0.1:${port}/health/ready`, 60_000);
  const run = runTs(t, 'scripts/cli.ts', ['demo'], env);
  const { code } = await run.exited;
  const out = run.output();
  t.equal(code, 0, out);
  t.match(out, /201 Created: message [0-9a-f-]{36}, route DIGITAL/);
  t.match(out, /alerts: when delivered, then on day 7 unless opened/);
  t.match(out, /manifest signature verified against the hub JWKS; brev\.pdf is identical to what was sent/);
  t.match(out, /routing signed by the hub: DIGITAL to \d{9}, bound to this manifest/);
  t.match(out, /DELIVERED\s+signed by hub-.* - verified/);
  t.match(out, /OPENED\s+signed by hub-.* - verified/);
  t.match(out, /acknowledged 2/);
  t.match(out, /status OPENED \(eFormidling: LEST\)/);
  t.match(out, /SEALED[\s\S]*DELIVERED[\s\S]*OPENED/);
  const again = runTs(t, 'scripts/cli.ts', ['demo'], env);
  t.equal((await again.exited).code, 0, 'runs again without seeding');
  t.notMatch(again.output(), /Seeding/);
  system.child.kill('SIGINT');
  await system.exited;
});
