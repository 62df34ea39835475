import { existsSync, readFileSync } from 'node:fs';
import type { Config } from '../../shared/config/config.js';
import { connectDb } from '../../shared/db/connect.js';
import { verifyReceiptInDb, type ReceiptVerification } from '../../shared/evidence/verify.js';
import { UsageError } from './token.js';

/**
 * `postbud verify <receipt>`: checks a receipt JWS (given inline, as a file, or `-` for stdin)
 * against the hub's keys and the message's hash-chained event log in DATABASE_URL. Prints the
 * result as JSON; the exit code is 0 only when both the signature and the chain hold.
 */
export async function verify(config: Config, argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const [arg] = argv;
  if (!arg || argv.length > 1) throw new UsageError('usage: postbud verify <receipt JWS | file | ->');
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
