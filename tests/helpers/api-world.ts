import { randomBytes } from 'node:crypto';
import type { Test } from 'tap';
import type { LightMyRequestResponse } from 'fastify';
import { SERVICES } from '../../scripts/services.js';
import { defaultSendersFile, seedRegistry } from '../../scripts/commands/seed.js';
import { EXAMPLE } from '../../shared/app/example-values.js';
import { exampleFor } from '../../shared/app/examples.js';
import { issueDevToken } from '../../shared/auth/dev-issuer.js';
import { SCOPES, type Scope } from '../../shared/auth/scopes.js';
import { testDatabase } from './database.js';
import { testDataDir, testService, type TestService } from './service.js';

/**
 * The four services on one seeded database (`postbud seed`'s data, so the documented examples
 * name persons, senders and providers that exist), and their OpenAPI documents as served. Tests
 * that walk every operation (fuzzing, example replay) start here.
 */

export type Json = Record<string, unknown>;

export interface Operation {
  service: string;
  method: string;
  path: string;
  op: Json;
}

export interface ApiWorld {
  services: Record<string, TestService>;
  /** The DATA_DIR the four share (development issuer, key-encryption keys, provider keys). */
  dataDir: string;
  specs: Record<string, Json>;
  operations: Operation[];
  /** A token that passes the operation's guard (all its scopes, or a citizen at the highest acr). */
  tokenFor(o: Operation): Promise<string | undefined>;
  inject(o: Operation, req: Request): Promise<LightMyRequestResponse>;
}

export interface Request {
  path: Record<string, string>;
  query: Record<string, string>;
  headers: Record<string, string>;
  body?: { contentType: string; payload: string | Buffer } | undefined;
  token?: string | undefined;
}

const ORG_FOR_SCOPE: Partial<Record<Scope, string>> = { [SCOPES.provider]: EXAMPLE.providerOrgnr };

export async function apiWorld(t: Test, env: Record<string, string> = {}): Promise<ApiWorld> {
  const database = await testDatabase(t);
  const services: Record<string, TestService> = {};
  // One DATA_DIR for all four, as `npm start` has: one development issuer, one key-encryption key.
  const dataDir = testDataDir(t);
  const specs: Record<string, Json> = {};
  for (const mod of SERVICES) {
    services[mod.name] = await testService(t, mod, {
      databaseUrl: database.url,
      env: { DATA_DIR: dataDir, RATE_LIMIT_PER_MINUTE: '1000000', INVITATIONS_PER_MINUTE: '1000000', WEBHOOK_ALLOW_PRIVATE: 'false', ...env },
    });
    specs[mod.name] = services[mod.name]!.app.swagger() as unknown as Json;
  }
  await seedRegistry(database.db.kysely, { sendersFile: defaultSendersFile(), persons: 40, dataDir });

  const operations: Operation[] = [];
  for (const [service, spec] of Object.entries(specs)) {
    for (const [path, item] of Object.entries(spec.paths as Json)) {
      for (const [method, op] of Object.entries(item as Json)) operations.push({ service, method: method.toUpperCase(), path, op: op as Json });
    }
  }

  const tokenFor = async (o: Operation): Promise<string | undefined> => {
    const security = (o.op.security ?? []) as Json[];
    if (security.length === 0) return undefined;
    const audience = services[o.service]!.config.AUTH_AUDIENCE;
    if (security.some((s) => 'idporten' in s)) return issueDevToken(dataDir, { pid: EXAMPLE.personId, acr: 'idporten-loa-high', audience });
    const scopes = security.flatMap((s) => (s.maskinporten ?? []) as Scope[]);
    const org = scopes.map((s) => ORG_FOR_SCOPE[s]).find(Boolean) ?? EXAMPLE.senderOrgnr;
    return issueDevToken(dataDir, { org, scope: scopes.join(' '), audience });
  };

  const inject = (o: Operation, req: Request) => {
    let url = o.path;
    for (const [k, v] of Object.entries(req.path)) url = url.replace(`{${k}}`, encodeURIComponent(v));
    const qs = new URLSearchParams(req.query).toString();
    return services[o.service]!.app.inject({
      method: o.method as 'GET',
      url: qs ? `${url}?${qs}` : url,
      headers: {
        ...req.headers,
        ...(req.token ? { authorization: `Bearer ${req.token}` } : {}),
        ...(req.body ? { 'content-type': req.body.contentType } : {}),
      },
      ...(req.body ? { payload: req.body.payload } : {}),
    });
  };

  return { services, dataDir, specs, operations, tokenFor, inject };
}

export const parametersOf = (op: Json, where: string): Json[] => ((op.parameters ?? []) as Json[]).filter((p) => p.in === where);

/** The documented example of a parameter: its own, else one built from its schema. */
export function parameterExample(p: Json, spec: Json): string {
  const value = p.example ?? exampleFor(p.schema, ((spec.components as Json).schemas ?? {}) as Json);
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The request an operation documents: required parameters and the first body media type with its example. */
export function documentedRequest(o: Operation, spec: Json): Request & { mediaType?: string; example?: unknown } {
  const pick = (where: string, all: boolean) =>
    Object.fromEntries(parametersOf(o.op, where).filter((p) => all || p.required).map((p) => [String(p.name), parameterExample(p, spec)]));
  const req: Request & { mediaType?: string; example?: unknown } = { path: pick('path', true), query: pick('query', false), headers: pick('header', false) };
  if (req.headers['idempotency-key'] !== undefined) req.headers['idempotency-key'] = `example-${randomBytes(6).toString('hex')}`;
  const content = ((o.op.requestBody as Json | undefined)?.content ?? {}) as Json;
  const [mediaType, media] = Object.entries(content)[0] ?? [];
  if (mediaType && media) {
    req.mediaType = mediaType;
    req.example = (media as Json).example;
    req.body = encodeBody(mediaType, req.example);
  }
  return req;
}

/** A body in its media type: JSON, JSON lines (an array of records), or multipart (message + files). */
export function encodeBody(mediaType: string, value: unknown, rawJson?: string): { contentType: string; payload: string | Buffer } {
  if (mediaType === 'multipart/form-data') return multipartBody(value as Json, rawJson);
  if (mediaType.includes('ndjson') || mediaType.includes('jsonl')) {
    const lines = rawJson ?? (Array.isArray(value) ? value.map((v) => JSON.stringify(v)).join('\n') : String(value));
    return { contentType: mediaType, payload: `${lines}\n` };
  }
  return { contentType: mediaType, payload: rawJson ?? JSON.stringify(value) };
}

/** multipart/form-data with a JSON `message` part and one `document` part per declared document. */
export function multipartBody(value: Json, rawMessage?: string): { contentType: string; payload: Buffer } {
  const boundary = `----postbud${randomBytes(8).toString('hex')}`;
  const message = value.message as Json | undefined;
  const chunks: Buffer[] = [Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="message"\r\n\r\n${rawMessage ?? JSON.stringify(message)}\r\n`)];
  const docs = (Array.isArray(message?.documents) ? message.documents : []) as Json[];
  for (const d of docs) {
    const name = typeof d.name === 'string' ? d.name : 'document.pdf';
    chunks.push(
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="document"; filename="${name.replace(/["\r\n]/g, '_')}"\r\nContent-Type: application/pdf\r\n\r\n`),
      Buffer.from(`%PDF-1.7\n${'postbud example document '.repeat(8)}\n%%EOF\n`),
      Buffer.from('\r\n'),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { contentType: `multipart/form-data; boundary=${boundary}`, payload: Buffer.concat(chunks) };
}
