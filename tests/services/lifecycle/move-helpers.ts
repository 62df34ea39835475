import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Test } from 'tap';

const run = promisify(execFile);

/**
 * What a provider does to export a letter: `openssl cms -encrypt` of the ZIP it holds for the
 * hub's transport certificate, RSAES-OAEP with SHA-256 and AES-256-CBC, DER.
 */
export async function opensslSealFor(t: Test, zip: Buffer, certPem: string): Promise<Buffer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postbud-export-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'in.zip'), zip);
  writeFileSync(path.join(dir, 'hub.pem'), certPem);
  const out = path.join(dir, 'out.der');
  await run('/usr/bin/openssl', [
    'cms', '-encrypt', '-binary', '-aes-256-cbc', '-outform', 'DER', '-in', path.join(dir, 'in.zip'), '-out', out,
    '-recip', path.join(dir, 'hub.pem'), '-keyopt', 'rsa_padding_mode:oaep', '-keyopt', 'rsa_oaep_md:sha256', '-keyopt', 'rsa_mgf1_md:sha256',
  ]);
  return readFileSync(out);
}
