import { readFileSync } from 'node:fs';
import type { Test } from 'tap';
import { service } from '../../../services/ingestion/app.js';
import { SCOPES } from '../../../shared/auth/scopes.js';
import { testService, type TestService } from '../../helpers/service.js';
import { PERSONS, seedRegistry, SENDER } from './fixtures.js';

/**
 * The DPI examples of the next-move documentation (tests/fixtures/nextmove/restdocs-dpi.json,
 * copied from felleslosninger/docs), and a helper putting our seeded sender and person in place
 * of the documentation's.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;
export const DOCS = JSON.parse(readFileSync(new URL('../../fixtures/nextmove/restdocs-dpi.json', import.meta.url), 'utf8')) as Record<string, Json>;
export const DOC_SENDER = '0192:910077473';
export const DOC_RECEIVER = '0192:910075918';
export const DOC_PERSON = '01017012345';

/** A documentation example with `sender` and `person` in place of theirs. */
export const substitute = (example: unknown, sender: string, person: string): Json =>
  JSON.parse(JSON.stringify(example).replaceAll(DOC_SENDER, `0192:${sender}`).replaceAll(DOC_RECEIVER, person).replaceAll(DOC_PERSON, person));

export const keys = (o: object) => Object.keys(o).sort();

/** A documentation example with our sender and `person` in place of theirs. */
export const ours = (example: unknown, person: string = PERSONS.digital): Json => substitute(example, SENDER, person);

export const withoutCreation = (sbd: Json) => {
  const copy = structuredClone(sbd);
  delete copy.standardBusinessDocumentHeader.documentIdentification.creationDateAndTime;
  return copy;
};

export interface Api {
  svc: TestService;
  call(method: string, url: string, opts?: { payload?: unknown; headers?: Record<string, string>; token?: string }): Promise<{ statusCode: number; json: () => Json; body: string; headers: Record<string, unknown> }>;
  token: string;
}

export async function setup(t: Test, env: Record<string, string> = {}): Promise<Api> {
  const svc = await testService(t, service, { env: { WEBHOOK_ALLOW_PRIVATE: 'true', ...env } });
  await seedRegistry(svc.deps.db.kysely);
  const token = await svc.token({ org: SENDER, scope: SCOPES.send });
  return {
    svc,
    token,
    call: (method, url, opts = {}) =>
      svc.app.inject({
        method: method as 'GET',
        url,
        headers: { authorization: `Bearer ${opts.token ?? token}`, ...opts.headers },
        ...(opts.payload === undefined ? {} : { payload: opts.payload as string }),
      }),
  };
}

export const uploadHeaders = (filename: string, type = 'text/plain;charset=UTF-8', name = 'Before The Law') => ({
  'content-type': type,
  'content-disposition': `attachment; name=${name}; filename=${filename}`,
});

/** A next-move error body as documented (timestamp, status, error, exception, message, path). */
export function isNextMoveError(t: Test, res: { statusCode: number; json: () => Json; headers: Record<string, unknown> }, status: number, path: string, what: string) {
  t.equal(res.statusCode, status, what);
  t.match(String(res.headers['content-type']), /^application\/json/, `${what}: application/json, not problem+json`);
  const body = res.json();
  t.same(keys(DOCS.subscriptionNotFound).every((k) => k in body), true, `${what}: every documented error field`);
  t.match(body, { status, path, error: String, exception: String, message: String, timestamp: String }, what);
  return body;
}

export function multipartBody(sbd: unknown, files: { name: string; filename: string; type: string; content: Buffer }[]) {
  const boundary = '6o2knFse3p53ty9dmcQvWAIx1zInP11uCfbm';
  const chunks: Buffer[] = [Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name=sbd\r\nContent-Type: application/json\r\n\r\n${JSON.stringify(sbd)}\r\n`)];
  for (const f of files) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${f.name}"; filename="${f.filename}"\r\nContent-Type: ${f.type}\r\n\r\n`), f.content, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}
