import { existsSync, readFileSync } from 'node:fs';
import type { Config } from '../../shared/config/config.js';
import { connectDb } from '../../shared/db/connect.js';
import { verifyReceiptInDb, type ReceiptVerification } from '../../shared/evidence/verify.js';
import { verifyBundle, verifyConsistencyDocument } from '../../shared/evidence/verify-bundle.js';
import { auditLog } from '../../shared/evidence/log.js';
import { UsageError } from './token.js';

const USAGE = 'usage: postbud verify <receipt JWS | file | -> | --bundle <file> [--jwks <file>] | --consistency <file> [--head <file>] [--jwks <file>] | --log';

function readJson(file: string, what: string): unknown {
  let text: string;
  try {
    text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`postbud verify: cannot read the ${what} ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new UsageError(`postbud verify: the ${what} ${file} is not JSON`);
  }
}

/**
 * `postbud verify --log` (DATABASE_URL): recomputes the latest signed tree head from every event
 * in the database, which notices events removed or edited behind the append-only triggers.
 */
async function verifyLog(config: Config, out: (s: string) => void): Promise<number> {
  if (!config.DATABASE_URL) throw new UsageError('postbud verify --log: set DATABASE_URL to the hub database');
  const db = connectDb(config.DATABASE_URL, { poolSize: 1, applicationName: 'postbud-verify' });
  try {
    const r = await auditLog(db.kysely);
    out(`${JSON.stringify(r, null, 2)}\n`);
    return r.ok ? 0 : 1;
  } finally {
    await db.close();
  }
}

/**
 * `postbud verify --bundle FILE [--jwks FILE]` and `--consistency FILE [--head FILE] [--jwks FILE]`:
 * offline, with no database and no network (docs/evidence.md). `--jwks` is the hub's published
 * JWKS as the verifier fetched it; every key the document embeds must be in it. Prints the result
 * as JSON, each problem with its code and where it is; exit code 0 only when nothing failed.
 */
async function verifyOffline(argv: string[], out: (s: string) => void): Promise<number> {
  const opts = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i]!, argv[i + 1]];
    if (!['--bundle', '--consistency', '--jwks', '--head'].includes(flag) || value === undefined || opts.has(flag)) throw new UsageError(USAGE);
    opts.set(flag, value);
  }
  if (opts.has('--bundle') === opts.has('--consistency') || (opts.has('--bundle') && opts.has('--head'))) throw new UsageError(USAGE);
  const jwks = opts.has('--jwks') ? (readJson(opts.get('--jwks')!, 'JWKS') as { keys: never[] }) : undefined;
  if (jwks && !Array.isArray(jwks.keys)) throw new UsageError(`postbud verify: ${opts.get('--jwks')} is not a JWKS`);
  const result = opts.has('--bundle')
    ? await verifyBundle(readJson(opts.get('--bundle')!, 'bundle'), { jwks })
    : await verifyConsistencyDocument(readJson(opts.get('--consistency')!, 'consistency proof'), { jwks, held: opts.has('--head') ? readJson(opts.get('--head')!, 'head') : undefined });
  out(`${JSON.stringify({ ...result, keysChecked: jwks ? 'against the given JWKS' : 'embedded keys only: pass --jwks to check they were published' }, null, 2)}\n`);
  return result.valid ? 0 : 1;
}

/**
 * `postbud verify <receipt>`: checks a receipt JWS (given inline, as a file, or `-` for stdin)
 * against the hub's keys and the message's hash-chained event log in DATABASE_URL. Prints the
 * result as JSON; the exit code is 0 only when both the signature and the chain hold.
 */
export async function verify(config: Config, argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  if (argv[0] === '--log' && argv.length === 1) return verifyLog(config, out);
  if (argv[0]?.startsWith('--')) return verifyOffline(argv, out);
  const [arg] = argv;
  if (!arg || argv.length > 1) throw new UsageError(USAGE);
  if (!config.DATABASE_URL) throw new UsageError('postbud verify: set DATABASE_URL to the hub database');
  const jws = arg === '-' ? readFileSync(0, 'utf8') : existsSync(arg) ? readFileSync(arg, 'utf8') : arg;
  const db = connectDb(config.DATABASE_URL, { poolSize: 1, applicationName: 'postbud-verify' });
  let result: ReceiptVerification;
  try {
    result = await verifyReceiptInDb(db.kysely, jws.trim());
  } finally {
    await db.close();
  }
  out(
    `${JSON.stringify(
      {
        valid: result.valid,
        signature: result.signature,
        chain: result.chain,
        kid: result.kid,
        receiptId: result.receipt?.receiptId,
        messageId: result.receipt?.messageId,
        type: result.receipt?.type,
        problems: result.problems,
      },
      null,
      2,
    )}\n`,
  );
  return result.valid ? 0 : 1;
}
