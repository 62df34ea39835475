/**
 * Generates TypeScript types from each committed OpenAPI document (openapi-typescript) and
 * typechecks `postbud demo`'s calls against them (scripts/commands/demo.ts, DemoApi): each
 * documented answer must fit what the demo reads, and each body the demo sends must fit what the
 * document says the operation takes. A document that loses a field, a status or a media type the
 * demo relies on fails here.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { OPENAPI_DIR } from '../../scripts/commands/openapi.js';
import { projectRoot } from '../../shared/runtime/project-root.js';

const run = promisify(execFile);
const root = projectRoot();
const bin = (name: string) => path.join(root, 'node_modules', '.bin', name);

const HARNESS = (demo: string) => `
import type { DemoApi } from ${JSON.stringify(demo)};
import type { components as IC, paths as I } from './ingestion.js';
import type { paths as S } from './storage.js';

type Assert<T extends true> = T;
type Fits<A, B> = [A] extends [B] ? true : false;
type Json<R> = R extends { content: { 'application/json': infer B } } ? B : never;

// Answers: what the document promises fits what the demo reads.
export type Capabilities = Assert<Fits<Json<I['/v1/capabilities/{personId}']['get']['responses'][200]>, DemoApi['capabilities']>>;
export type Submitted = Assert<Fits<Json<I['/v1/messages']['post']['responses'][201]>, DemoApi['submitted']>>;
export type Deliveries = Assert<Fits<Json<S['/v1/deliveries']['get']['responses'][200]>, DemoApi['deliveries']>>;
export type AckAnswer = Assert<Fits<Json<S['/v1/deliveries/{id}/ack']['post']['responses'][200]>, DemoApi['ackAnswer']>>;
export type EventAnswer = Assert<Fits<Json<S['/v1/deliveries/{id}/events']['post']['responses'][200]>, DemoApi['eventAnswer']>>;
export type Receipts = Assert<Fits<Json<I['/v1/receipts']['get']['responses'][200]>, DemoApi['receipts']>>;
export type Acknowledged = Assert<Fits<Json<I['/v1/receipts/ack']['post']['responses'][200]>, DemoApi['acknowledged']>>;
export type Status = Assert<Fits<Json<I['/v1/messages/{id}']['get']['responses'][200]>, DemoApi['status']>>;
export type Jwks = Assert<Fits<Json<I['/.well-known/jwks.json']['get']['responses'][200]>, DemoApi['jwks']>>;

// Requests: what the demo sends fits what the document says the operation takes.
export type Letter = Assert<Fits<DemoApi['letter'], IC['schemas']['LetterMessage']>>;
export type LetterParts = Assert<Fits<{ message: DemoApi['letter']; document: string[] }, NonNullable<I['/v1/messages']['post']['requestBody']>['content']['multipart/form-data']>>;
export type IdempotencyKey = Assert<Fits<{ 'idempotency-key': string }, I['/v1/messages']['post']['parameters']['header']>>;
export type Event = Assert<Fits<DemoApi['event'], Json<NonNullable<S['/v1/deliveries/{id}/events']['post']['requestBody']>>>>;
export type ReceiptAck = Assert<Fits<DemoApi['receiptAck'], Json<NonNullable<I['/v1/receipts/ack']['post']['requestBody']>>>>;
export type ReceiptQuery = Assert<Fits<{ limit: number }, NonNullable<I['/v1/receipts']['get']['parameters']['query']>>>;
export type DeliveryQuery = Assert<Fits<{ limit: number }, NonNullable<S['/v1/deliveries']['get']['parameters']['query']>>>;

// The generated types are not \`any\`: a field the documents do not have is refused.
// @ts-expect-error the capabilities answer has no field \`nonexistent\`
export type NotAny = Assert<Fits<Json<I['/v1/capabilities/{personId}']['get']['responses'][200]>, { nonexistent: string }>>;
// @ts-expect-error the letter's language is one of nb, nn, en, se
export type WrongLetter = Assert<Fits<Omit<DemoApi['letter'], 'language'> & { language: 'xx' }, IC['schemas']['LetterMessage']>>;
`;

t.setTimeout(15 * 60_000);

t.test("the demo's calls typecheck against types generated from the committed documents", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postbud-typegen-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const name of ['registry', 'ingestion', 'storage', 'notification']) {
    await run(bin('openapi-typescript'), [path.join(OPENAPI_DIR, `${name}.json`), '--output', path.join(dir, `${name}.ts`)], { cwd: root });
  }
  writeFileSync(path.join(dir, 'harness.ts'), HARNESS(path.join(root, 'scripts', 'commands', 'demo.ts')));
  const args = [
    '--noEmit', '--strict', '--skipLibCheck', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext',
    '--allowImportingTsExtensions', '--typeRoots', path.join(root, 'node_modules', '@types'), '--types', 'node',
    path.join(dir, 'harness.ts'), ...['registry', 'notification'].map((n) => path.join(dir, `${n}.ts`)),
  ];
  const result = await run(bin('tsc'), args, { cwd: root }).then(
    () => ({ ok: true, out: '' }),
    (err: { stdout?: string; stderr?: string }) => ({ ok: false, out: `${err.stdout ?? ''}${err.stderr ?? ''}` }),
  );
  t.equal(result.out.replaceAll(dir, '<generated>'), '', 'tsc reports nothing');
  t.ok(result.ok, 'the demo typechecks against the generated types');
});
