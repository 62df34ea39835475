import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../shared/config/config.js';
import { connectDb } from '../../shared/db/connect.js';
import { createLogger } from '../../shared/logging/logger.js';
import { createQueueFactory } from '../../shared/queue/queues.js';
import { projectRoot } from '../../shared/runtime/project-root.js';
import { SERVICES } from '../services.js';

export const OPENAPI_DIR = path.join(projectRoot(), 'openapi');

/**
 * Each service's OpenAPI document as its code produces it. Building an app opens no connection
 * (pools connect on first query), so this runs without a database.
 */
export async function openapiSpecs(): Promise<Record<string, string>> {
  const config = loadConfig({ DATABASE_URL: 'postgres://openapi@127.0.0.1:1/none', LOG_LEVEL: 'silent' });
  const out: Record<string, string> = {};
  for (const mod of SERVICES) {
    const db = connectDb(config.DATABASE_URL!);
    const queues = createQueueFactory({ databaseUrl: config.DATABASE_URL!, prefix: 'openapi' });
    const app = await mod.buildApp({
      config,
      db,
      queues,
      verifier: { verify: () => Promise.reject(new Error('not for serving')) },
      logger: createLogger(mod.name, 'silent'),
    });
    await app.ready();
    out[mod.name] = `${JSON.stringify(app.swagger(), null, 2)}\n`;
    await app.close();
    await db.close();
  }
  return out;
}

export async function writeOpenapi(dir = OPENAPI_DIR): Promise<string[]> {
  const specs = await openapiSpecs();
  return Object.entries(specs).map(([name, text]) => {
    const file = path.join(dir, `${name}.json`);
    writeFileSync(file, text);
    return file;
  });
}
