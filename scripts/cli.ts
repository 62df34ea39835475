#!/usr/bin/env node
import { ConfigError, loadConfig as readConfig, syntheticPersonIdsAllowed } from '../shared/config/config.js';
import { setPersonIdPolicy } from '../shared/ids/person-id.js';
import { demo, DemoError } from './commands/demo.js';
import { migrate } from './commands/migrate.js';
import { writeOpenapi } from './commands/openapi.js';
import { rotateHubKey } from './commands/rotate-hub-key.js';
import { seed } from './commands/seed.js';
import { start } from './commands/start.js';
import { token, UsageError } from './commands/token.js';
import { verify } from './commands/verify.js';

/** The configuration, with this process's personId policy set from it (seed, token and demo validate ids). */
function loadConfig() {
  const config = readConfig();
  setPersonIdPolicy({ synthetic: syntheticPersonIdsAllowed(config) });
  return config;
}

const HELP = `postbud <command>

  start                      run all four services (embedded Postgres unless DATABASE_URL is set)
  migrate                    apply database migrations (DATABASE_URL)
  token --org <orgnr> --scope "<scopes>"     a machine-client token from the development issuer
  token --pid <personId> --acr <acr>         a citizen token from the development issuer
  openapi                    write each service's OpenAPI document to openapi/
  seed [--persons <n>] [--senders <file>]   load senders, providers (dev certificates) and synthetic persons; idempotent
  verify <receipt|file|->    check a receipt's signature and its message's event chain (DATABASE_URL)
  verify --bundle <file> [--jwks <file>] [--head <file>]
                             check an evidence bundle offline: no database, no network (docs/evidence.md)
  verify --consistency <file> [--head <file>] [--jwks <file>]
                             check a consistency proof between two signed tree heads, offline
  verify --log               recompute the latest tree head from every event in the database (DATABASE_URL)
  rotate-hub-key [--now]     new hub signing key, published before it signs; old public keys stay in the JWKS (DATABASE_URL)
  demo                       one letter through the running system (after npm start): send, pull, decrypt, ack, open, receipts, timeline
`;

const commands: Record<string, (argv: string[]) => Promise<void>> = {
  start: () => start(loadConfig()),
  migrate: () => migrate(loadConfig()),
  token: (argv) => token(loadConfig(), argv),
  seed: (argv) => seed(loadConfig(), argv),
  demo: () => demo(loadConfig()),
  'rotate-hub-key': async (argv) => {
    await rotateHubKey(loadConfig(), undefined, argv);
  },
  verify: async (argv) => {
    process.exitCode = await verify(loadConfig(), argv);
  },
  openapi: async () => {
    for (const f of await writeOpenapi()) process.stdout.write(`wrote ${f}\n`);
  },
};

const [name, ...rest] = process.argv.slice(2);
const command = name ? commands[name] : undefined;
if (!command) {
  process.stdout.write(HELP);
  process.exit(name && name !== 'help' && name !== '--help' ? 64 : 0);
}
try {
  await command(rest);
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`postbud ${name}: ${err.message}\n`);
    process.exit(78);
  }
  if (err instanceof DemoError) {
    process.stderr.write(`postbud demo: ${err.message}\n`);
    process.exit(1);
  }
  if (err instanceof UsageError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(64);
  }
  throw err;
}
