import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
import type { App } from '../../shared/app/create-app.js';
import type { ServiceDeps } from '../../shared/app/deps.js';
import { issueDevToken, type TokenRequest } from '../../shared/auth/dev-issuer.js';
import { loadConfig, type Config, type Env } from '../../shared/config/config.js';
import { createLogger } from '../../shared/logging/logger.js';
import type { QueueBackendKind } from '../../shared/queue/queues.js';
import { trustedIssuers } from '../../shared/runtime/service-deps.js';
import { createTokenVerifier } from '../../shared/auth/verifier.js';
import type { ServiceModule } from '../../shared/runtime/service-module.js';
import { testDatabase } from './database.js';
import { testQueues } from './queues.js';

export interface TestService {
  app: App;
  deps: ServiceDeps;
  config: Config;
  /** A token from this test's development issuer; `audience` defaults to the configured one. */
  token(req: TokenRequest extends infer R ? (R extends unknown ? Omit<R, 'audience'> & { audience?: string } : never) : never): Promise<string>;
}

/** A temporary DATA_DIR (dev issuer keys, KEKs), removed at teardown. */
export function testDataDir(t: Test): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postbud-data-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Everything a service's buildApp needs, on a fresh database and queue namespace. */
export async function testDeps(t: Test, opts: { queue?: QueueBackendKind; env?: Env; databaseUrl?: string } = {}): Promise<ServiceDeps & { dataDir: string; databaseUrl: string }> {
  const database = opts.databaseUrl ? undefined : await testDatabase(t);
  const databaseUrl = opts.databaseUrl ?? database!.url;
  const dataDir = testDataDir(t);
  // Shedding by event-loop delay is off unless a test asks for it: a test's own synchronous work
  // (certificate generation, say) would otherwise make the intake refuse the next letters.
  const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', DATA_DIR: dataDir, DATABASE_URL: databaseUrl, INTAKE_MAX_EVENT_LOOP_DELAY_MS: '0', INTAKE_TARGET_LATENCY_MS: '0', ...opts.env });
  const queues = testQueues(t, opts.queue ?? 'postgres', databaseUrl);
  const verifier = createTokenVerifier({ issuers: await trustedIssuers(config), audience: config.AUTH_AUDIENCE, clockToleranceS: 0, maxLifetimeS: config.AUTH_MAX_TOKEN_LIFETIME_S });
  const db = database?.db ?? (await import('../../shared/db/connect.js')).connectDb(databaseUrl);
  if (!database) t.teardown(() => db.close());
  return { config, db, queues, verifier, logger: createLogger('test', 'silent'), dataDir, databaseUrl };
}

export async function testService(t: Test, mod: ServiceModule, opts: Parameters<typeof testDeps>[1] = {}): Promise<TestService> {
  const deps = await testDeps(t, opts);
  const app = await mod.buildApp(deps);
  t.teardown(() => app.close());
  await app.ready();
  return {
    app,
    deps,
    config: deps.config,
    token: (req) => issueDevToken(deps.dataDir, { ...req, audience: req.audience ?? deps.config.AUTH_AUDIENCE } as TokenRequest),
  };
}
