import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { projectRoot } from '../../shared/runtime/project-root.js';
import { testDatabase } from '../helpers/database.js';
import { runTs, servicePorts, waitForHttp } from '../helpers/processes.js';
import { testDataDir } from '../helpers/service.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = projectRoot();

t.test('first hour: npm start seeds an empty development registry and the README commands work as printed', async (t) => {
  const { url } = await testDatabase(t);
  const dataDir = testDataDir(t);
  const { ports, env: portEnv } = await servicePorts();
  const env = { NODE_ENV: 'development', DATABASE_URL: url, DATA_DIR: dataDir, QUEUE_PREFIX: 'e2e_first', LOG_LEVEL: 'warn', ...portEnv };
  const system = runTs(t, 'scripts/cli.ts', ['start'], env);
  for (const port of ports) await waitForHttp(`http://127.0.0.1:${port}/health/ready`, 90_000);
  await waitFor('the banner', async () => system.output().includes('Ctrl-C stops everything'), 30_000);
  const banner = system.output();
  t.match(banner, /The registry is empty: seeding development data/);
  t.match(banner, /Seeded development data \(examples listed in .*seed-persons\.json\)/);
  t.match(banner, /npx postbud token --org \d{9} --scope "postbud:send postbud:lookup\.digitalpost"/, 'the banner prints a token command for a seeded sender');
  t.match(banner, /-F 'document=@\/.*docs\/examples\/brev\.pdf;type=application\/pdf' http:\/\/.*\/v1\/messages/, 'and a curl that sends a PDF');
  t.notMatch(banner, /991825827|01017012345/, 'not the examples that never worked');

  // The README's block, run as printed; only the port and the way to call the CLI differ.
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const block = /<!-- first-hour:start -->\n```sh\n([\s\S]*?)\n```/.exec(readme)![1]!;
  const cli = `node --import tsx ${path.join(ROOT, 'scripts', 'cli.ts')}`;
  const script = block
    .replaceAll('http://localhost:3002', `http://127.0.0.1:${ports[1]}`)
    .replaceAll('npx postbud', cli)
    .split('\n')
    // Each command's output on a line of its own.
    .map((line) => (line.endsWith('\\') || line.startsWith('TOKEN=') ? line : `${line}; echo`))
    .join('\n');
  const out = execFileSync('bash', ['-euo', 'pipefail', '-c', script], { cwd: ROOT, env: { ...process.env, ...env, NODE_V8_COVERAGE: '' }, encoding: 'utf8' });
  const [capabilities, letter, citizenToken] = out.trim().split('\n');
  t.match(JSON.parse(capabilities!), { status: 'ACTIVE', reason: null, digital: { possible: true, provider: { orgnr: /^\d{9}$/ }, mailboxAddress: /./ } }, 'capabilities: digital mail is possible, and where');
  t.match(JSON.parse(letter!), { id: /^[0-9a-f-]{36}$/, route: 'DIGITAL' }, `the letter with its PDF is accepted and routed digitally: ${letter}`);
  const me = await fetch(`http://127.0.0.1:${ports[0]}/v1/me`, { headers: { authorization: `Bearer ${citizenToken}` } });
  t.equal(me.status, 200, 'the citizen token works for the seeded person');

  system.child.kill('SIGINT');
  await system.exited;
  const again = runTs(t, 'scripts/cli.ts', ['start'], env);
  for (const port of ports) await waitForHttp(`http://127.0.0.1:${port}/health/ready`, 90_000);
  await waitFor('the banner', async () => again.output().includes('Ctrl-C stops everything'), 30_000);
  t.notMatch(again.output(), /seeding/, 'a registry with data is not seeded again');
  t.match(again.output(), /Seeded development data/);
  again.child.kill('SIGINT');
  await again.exited;
});
