import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Test } from 'tap';
import { freePort } from '../harness/free-port.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TSX = path.join(ROOT, 'node_modules/tsx/dist/esm/index.mjs');

export interface Proc {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs a TypeScript entry point as its own Node process (through tsx), as a deployment would. */
export function runTs(t: Test, file: string, args: string[], env: Record<string, string>, opts: { detached?: boolean } = {}): Proc {
  // Coverage is collected in the test process only: a child's V8 coverage of the same files,
  // transformed by tsx rather than tap's loader, merges into nonsense (or blanks the report).
  // tap's process tracking re-adds its variables to every spawn unless they are set explicitly.
  const inherited = { ...process.env, NODE_V8_COVERAGE: '', _TAPJS_PROCESSINFO_COVERAGE_: '0' };
  const child = spawn(process.execPath, ['--import', TSX, path.join(ROOT, file), ...args], {
    cwd: ROOT,
    env: { ...inherited, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so a test can send a terminal's Ctrl-C to the whole group.
    detached: opts.detached ?? false,
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += String(d)));
  child.stderr!.on('data', (d) => (out += String(d)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, output: () => out, exited };
}

export async function waitForHttp(url: string, timeoutMs = 30_000): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.ok) return res;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`${url} not ready within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Four free ports, and the settings that put the services on them. */
export async function servicePorts(): Promise<{ ports: number[]; env: Record<string, string> }> {
  const ports = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  return {
    ports,
    env: {
      REGISTRY_PORT: String(ports[0]),
      INGESTION_PORT: String(ports[1]),
      STORAGE_PORT: String(ports[2]),
      NOTIFICATION_PORT: String(ports[3]),
    },
  };
}

export type ServiceName = 'registry' | 'ingestion' | 'storage' | 'notification';

/**
 * The database seeded (`postbud seed --persons N`), then the named services as processes on free
 * ports, each ready. Returns each one's process and base URL by name.
 */
export async function startServices<N extends ServiceName>(t: Test, names: readonly N[], env: Record<string, string>, opts: { persons?: number } = {}) {
  const ports = await Promise.all(names.map(() => freePort()));
  const all = { ...env, ...Object.fromEntries(names.map((n, i) => [`${n.toUpperCase()}_PORT`, String(ports[i])])) };
  const seed = runTs(t, 'scripts/cli.ts', ['seed', '--persons', String(opts.persons ?? 60)], all);
  t.equal((await seed.exited).code, 0, seed.output());
  const procs = {} as { [K in N]: Proc };
  const urls = {} as { [K in N]: string };
  names.forEach((n, i) => {
    procs[n] = runTs(t, `services/${n}/main.ts`, [], all);
    urls[n] = `http://127.0.0.1:${ports[i]}`;
  });
  // Generous: on a busy 2-core machine several tsx start-ups and their migrations take a while.
  await Promise.all(names.map((n) => waitForHttp(`${urls[n]}/health/ready`, 180_000)));
  return { procs, urls, env: all };
}

/** The letter path: ingestion and storage as processes, seeded. `env` needs DATABASE_URL and DATA_DIR. */
export async function startLetterPath(t: Test, env: Record<string, string>) {
  const { procs, urls } = await startServices(t, ['ingestion', 'storage'], env);
  return { ingestion: procs.ingestion, storage: procs.storage, I: urls.ingestion, S: urls.storage };
}

export { fetchRetrying503 } from '../../shared/http/retry-after.js';
