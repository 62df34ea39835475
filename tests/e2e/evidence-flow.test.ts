import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { issueDevToken } from '../../shared/auth/dev-issuer.js';
import { SCOPES } from '../../shared/auth/scopes.js';
import type { EvidenceBundle } from '../../shared/evidence/bundle.js';
import type { SignedHead } from '../../shared/evidence/log.js';
import { testDatabase } from '../helpers/database.js';
import { fetchRetrying503, runTs, startServices } from '../helpers/processes.js';
import { testDataDir } from '../helpers/service.js';
import { waitFor } from '../helpers/wait.js';
import { multipart, PDF } from '../services/ingestion/fixtures.js';

const run = promisify(execFile);

t.test('evidence end to end, services as processes: the storage service logs the letter, the sender verifies its bundle offline', async (t) => {
  const { url, db } = await testDatabase(t);
  const dataDir = testDataDir(t);
  const env = { DATABASE_URL: url, DATA_DIR: dataDir, QUEUE_PREFIX: 'e2e_evidence', LOG_LEVEL: 'warn', EVIDENCE_HEAD_SECONDS: '1' };
  const { procs, urls } = await startServices(t, ['ingestion', 'storage'], env, { persons: 20 });
  const { ingestion, storage } = procs;
  const [I, S] = [urls.ingestion, urls.storage];

  const sender = (await db.kysely.selectFrom('senders').select('orgnr').where('status', '=', 'active').orderBy('orgnr').limit(1).executeTakeFirstOrThrow()).orgnr;
  const asSender = { authorization: `Bearer ${await issueDevToken(dataDir, { org: sender, scope: SCOPES.send, audience: 'postbud' })}` };
  const personId = (await db.kysely.selectFrom('mailboxes').select('person_id').where('active', '=', true).limit(1).executeTakeFirstOrThrow()).person_id;
  const pdf = PDF(3000);
  const send = async () => {
    const body = multipart(
      { recipient: { personId }, title: 'Vedtak', language: 'nb', securityLevel: 4, documents: [{ name: 'vedtak.pdf', mime: 'application/pdf', main: true }] },
      [{ name: 'vedtak.pdf', content: pdf }],
    );
    const res = await fetchRetrying503(`${I}/v1/messages`, { method: 'POST', headers: { ...asSender, 'content-type': body.contentType, 'idempotency-key': crypto.randomUUID() }, body: body.payload });
    t.equal(res.status, 201, await res.clone().text());
    return ((await res.json()) as { id: string }).id;
  };

  const first = await send();
  const headOf = async () => (await (await fetch(`${S}/v1/evidence/head`)).json()) as SignedHead;
  const h1 = await waitFor('a head covering the first letter', async () => {
    const r = await fetch(`${S}/v1/evidence/head`);
    return r.ok && ((await r.json()) as SignedHead).treeSize >= 1;
  }, 90_000).then(headOf);
  const id = await send();
  // The bundle once the storage service's sequencer has put the SEALED event in a signed head.
  const bundle = await waitFor('the SEALED event in the log', async () => {
    const b = (await (await fetch(`${I}/v1/messages/${id}/evidence`, { headers: asSender })).json()) as EvidenceBundle;
    return b.events[0]?.leafIndex !== null && b.head && b.head.treeSize > b.events[0]!.leafIndex! ? b : undefined;
  }, 90_000);
  t.not(first, id);
  t.same(bundle.documents, [{ sha256: createHash('sha256').update(pdf).digest('hex'), size: pdf.length }], 'the document as sent');

  const dir = testDataDir(t);
  const file = (name: string, v: unknown) => {
    writeFileSync(path.join(dir, name), JSON.stringify(v));
    return path.join(dir, name);
  };
  file('bundle.json', bundle);
  file('jwks.json', await (await fetch(`${S}/.well-known/jwks.json`)).json());
  // The CLI without DATABASE_URL and without network: only the files.
  const offlineEnv = { DATA_DIR: dataDir, LOG_LEVEL: 'warn', DATABASE_URL: '' };
  const cli = runTs(t, 'scripts/cli.ts', ['verify', '--bundle', path.join(dir, 'bundle.json'), '--jwks', path.join(dir, 'jwks.json')], offlineEnv);
  const done = await cli.exited;
  t.equal(done.code, 0, cli.output());
  t.match(cli.output(), /"valid": true/);
  const py = await run('python3', ['-c', 'import cryptography']).then(
    () => true,
    () => false,
  );
  if (py || process.env.CI === 'true') {
    const { stdout } = await run('python3', ['scripts/verify-bundle.py', path.join(dir, 'bundle.json'), '--jwks', path.join(dir, 'jwks.json')]);
    t.match(JSON.parse(stdout), { valid: true, problems: [] }, 'the independent verifier agrees');
  }

  // The head the sender kept from before the second letter: the current log extends it.
  const h2 = bundle.head!;
  const proof = (await (await fetch(`${S}/v1/evidence/consistency?first=${h1.treeSize}&second=${h2.treeSize}`)).json()) as unknown;
  file('proof.json', proof);
  file('h1.json', h1);
  const c = runTs(t, 'scripts/cli.ts', ['verify', '--consistency', path.join(dir, 'proof.json'), '--head', path.join(dir, 'h1.json'), '--jwks', path.join(dir, 'jwks.json')], offlineEnv);
  t.equal((await c.exited).code, 0, c.output());

  const logs = ingestion.output() + storage.output();
  t.notOk(logs.includes(personId), 'no personId in the logs');
  ingestion.child.kill('SIGTERM');
  storage.child.kill('SIGTERM');
  t.equal((await ingestion.exited).code, 0);
  t.equal((await storage.exited).code, 0);
});
