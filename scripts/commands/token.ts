import { parseArgs } from 'node:util';
import { issueDevToken } from '../../shared/auth/dev-issuer.js';
import type { Config } from '../../shared/config/config.js';

const USAGE = `usage:
  postbud token --org <orgnr> --scope "<scopes>" [--ttl <seconds>]
  postbud token --pid <personId> --acr <acr> [--ttl <seconds>]`;

/** `postbud token`: prints only the token, so it composes with $(...). */
export async function token(config: Config, argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { org: { type: 'string' }, scope: { type: 'string' }, pid: { type: 'string' }, acr: { type: 'string' }, ttl: { type: 'string' } },
  });
  const ttlSeconds = values.ttl ? Number(values.ttl) : undefined;
  if (ttlSeconds !== undefined && !(Number.isInteger(ttlSeconds) && ttlSeconds > 0)) throw new UsageError(`--ttl must be a positive integer\n${USAGE}`);
  if (ttlSeconds !== undefined && ttlSeconds > config.AUTH_MAX_TOKEN_LIFETIME_S) {
    throw new UsageError(`--ttl must be at most ${config.AUTH_MAX_TOKEN_LIFETIME_S} (AUTH_MAX_TOKEN_LIFETIME_S): the services refuse longer-lived tokens\n${USAGE}`);
  }
  if (values.org !== undefined) {
    if (!/^\d{9}$/.test(values.org)) throw new UsageError(`--org must be a 9-digit organisation number\n${USAGE}`);
    const t = await issueDevToken(config.DATA_DIR, { org: values.org, scope: values.scope ?? '', audience: config.AUTH_AUDIENCE, ttlSeconds });
    process.stdout.write(`${t}\n`);
    return;
  }
  if (values.pid !== undefined) {
    if (!/^\d{11}$/.test(values.pid)) throw new UsageError(`--pid must be an 11-digit personId\n${USAGE}`);
    const t = await issueDevToken(config.DATA_DIR, { pid: values.pid, acr: values.acr ?? 'idporten-loa-substantial', audience: config.AUTH_AUDIENCE, ttlSeconds });
    process.stdout.write(`${t}\n`);
    return;
  }
  throw new UsageError(USAGE);
}

export class UsageError extends Error {}
