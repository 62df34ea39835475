import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from '../../shared/runtime/embedded-postgres.js';
import { freePort } from '../../tests/harness/free-port.js';

/** BENCH_DATABASE_URL when given, else a throwaway embedded Postgres. */
export async function benchDatabase(): Promise<{ url: string; /** The embedded instance's data directory (CPU accounting); absent for BENCH_DATABASE_URL. */ dataDir?: string; stop(): Promise<void> }> {
  if (process.env.BENCH_DATABASE_URL) return { url: process.env.BENCH_DATABASE_URL, stop: async () => undefined };
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postbud-bench-'));
  chmodSync(dir, 0o755);
  const dataDir = path.join(dir, 'pg');
  const pg = await startEmbeddedPostgres({ dataDir, port: await freePort() });
  return {
    url: pg.url,
    dataDir,
    async stop() {
      await pg.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
