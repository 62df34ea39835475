import { STATUS_CODES } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { guardOf, type GuardInfo } from '../auth/guards.js';
import { ACR_LEVELS, SCOPE_DESCRIPTIONS } from '../auth/scopes.js';
import { commonProblems, Problem, PROBLEM_BASE, PROBLEM_CONTENT_TYPE, problemTypes, type ProblemType } from '../errors/problem.js';
import { API_TAGS, SERVICE_PORTS } from './api-tags.js';
import { exampleFor } from './examples.js';
import { ProblemSchema } from './schemas.js';

/**
 * The part of each OpenAPI document that is derived from code rather than written per route:
 * security from the guard a route runs, the error responses the shared error model can give
 * (with their media type and problem types), the headers every response carries, operationIds,
 * tag descriptions, servers, named component schemas and examples. A route only states what is
 * its own (summary, schemas, its specific statuses and headers).
 */

type Json = Record<string, unknown>;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The problem type of a 415 on this route, when it has one of its own (default: unsupported-media-type). */
    unsupportedMediaType?: ProblemType;
  }
  interface FastifySchema {
    /** Response headers per status code, e.g. `{ 201: { location: { description, type: 'string', maxLength: 2048 } } }`. */
    responseHeaders?: Record<number, Record<string, Json & { description: string }>>;
    /**
     * The shape every error of this operation is sent in, when it is not problem+json (the
     * next-move API under /api/): documented for each error status instead of the problem.
     */
    errorShape?: { mediaType: string; schema: unknown };
  }
}

export const SECURITY_SCHEMES = {
  maskinporten: {
    type: 'oauth2',
    description:
      'Machine clients (agencies, mailbox and print providers, operators): a Maskinporten access token sent as `Authorization: Bearer <JWT>`. ' +
      'The JWT (RFC8725 best practices: RS256 or ES256 only, `iss`, `aud` and `exp` required and checked, keys from the issuer JWKS) carries ' +
      '`consumer.ID = "0192:<orgnr>"` (the calling organisation) and a space-separated `scope`. An operation lists the scopes it accepts; any one of them suffices. ' +
      'In development `npx postbud token --org <orgnr> --scope "<scopes>"` issues one.',
    flows: { clientCredentials: { tokenUrl: 'https://maskinporten.no/token', scopes: { ...SCOPE_DESCRIPTIONS } } },
  },
  idporten: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description:
      'Citizens: an ID-porten access token sent as `Authorization: Bearer <JWT>` (RFC8725 best practices: RS256 or ES256 only, `iss`, `aud` and `exp` required and checked). ' +
      `It carries \`pid\` (the fødselsnummer or D-number) and \`acr\`, one of ${ACR_LEVELS.join(', ')} (weakest first); an operation that changes anything states the lowest acr it accepts. ` +
      'In development `npx postbud token --pid <personId> --acr <acr>` issues one.',
  },
} as const;

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Paths the rate limit does not count (also used by createApp's allowList). */
export const isRateLimitExempt = (path: string): boolean => path.startsWith('/health/') || path === '/metrics';

const RATE_LIMIT_HEADERS = {
  'X-RateLimit-Limit': { description: 'Requests allowed per window (per client address)', type: 'integer', minimum: 0 },
  'X-RateLimit-Remaining': { description: 'Requests left in the current window', type: 'integer', minimum: 0 },
  'X-RateLimit-Reset': { description: 'Seconds until the window resets', type: 'integer', minimum: 0 },
};
const REQUEST_ID_HEADER = {
  'X-Request-Id': { description: 'The request id (yours when you sent a sane x-request-id, else a UUID); quote it when reporting a problem', type: 'string', maxLength: 128 },
};
const RETRY_AFTER = { 'Retry-After': { description: 'Seconds to wait before trying again', type: 'integer', minimum: 0 } };
const WWW_AUTHENTICATE = { 'WWW-Authenticate': { description: 'Bearer challenge (RFC 6750)', type: 'string', maxLength: 200 } };

/** The media types a route takes: its `consumes`, else JSON. */
export function acceptedTypes(schema: { consumes?: readonly string[] } | undefined): string[] {
  return [...(schema?.consumes ?? ['application/json'])];
}

/** The accepted list of the route a request matched, for 415 answers. */
export function acceptedFor(request: FastifyRequest): string[] {
  return acceptedTypes(request.routeOptions.schema as { consumes?: readonly string[] } | undefined);
}

function operationId(method: string, url: string): string {
  const words = url
    .split('/')
    .filter(Boolean)
    .map((seg) => (seg.startsWith(':') ? `by-${seg.slice(1)}` : seg.replace(/^\./, '')))
    .flatMap((seg) => seg.split(/[^A-Za-z0-9]+/))
    .filter(Boolean);
  return method.toLowerCase() + words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
}

function securityFor(guard: GuardInfo | undefined): Json[] {
  if (!guard) return [];
  if (guard.kind === 'client') return guard.anyOf.map((scope) => ({ maskinporten: [scope] }));
  return [{ idporten: [] }];
}

function authNote(guard: GuardInfo | undefined): string | undefined {
  if (!guard) return undefined;
  if (guard.kind === 'client') return `Machine token (Maskinporten) with ${guard.anyOf.length === 1 ? 'scope' : 'any of the scopes'} ${guard.anyOf.map((s) => `\`${s}\``).join(', ')}.`;
  return guard.minAcr ? `Citizen token (ID-porten) with acr \`${guard.minAcr}\` or higher.` : 'Citizen token (ID-porten), any acr.';
}

/** Problem types a status can carry on this service: the common ones and the service's own. */
function problemsAt(prefix: string, status: number): ProblemType[] {
  return [...Object.values(commonProblems), ...problemTypes(prefix)].filter((p) => p.status === status);
}

function problemResponse(prefix: string, status: number, headers: Json): Json {
  const types = problemsAt(prefix, status);
  const text = types.map((p) => `\`${p.slug}\`: ${p.title}`).join('; ');
  return {
    description: `${STATUS_CODES[status] ?? 'Error'}${text ? `. Problem types: ${text}` : ''}`,
    headers,
    content: {
      [PROBLEM_CONTENT_TYPE]: {
        schema: {
          allOf: [ProblemSchema],
          ...(types.length > 0 ? { properties: { type: { type: 'string', enum: types.map((p) => PROBLEM_BASE + p.slug) } } } : {}),
        },
      },
    },
  };
}

/** An error in a route's own shape: the same causes (problem types, by their `code`), another body. */
function shapedErrorResponse(prefix: string, status: number, headers: Json, shape: { mediaType: string; schema: unknown }): Json {
  const types = problemsAt(prefix, status);
  const text = types.map((p) => `\`${p.code}\`: ${p.title}`).join('; ');
  return {
    description: `${STATUS_CODES[status] ?? 'Error'}${text ? `. Problem codes (\`code\`): ${text}` : ''}`,
    headers,
    content: {
      [shape.mediaType]: {
        schema: {
          allOf: [shape.schema],
          properties: { status: { const: status }, ...(types.length > 0 ? { code: { type: 'string', enum: types.map((p) => p.code) } } : {}) },
          required: ['status', 'code'],
        },
      },
    },
  };
}

/** The same schema, or a copy of it (@fastify/swagger clones route schemas): by identity or by `title`. */
function sameNamedSchema(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  const title = (s: unknown) => (typeof s === 'object' && s !== null ? (s as Json).title : undefined);
  return title(a) !== undefined && title(a) === title(b);
}

function isProblemSchema(s: unknown): boolean {
  return s === ProblemSchema || (typeof s === 'object' && s !== null && (s as Json).title === 'Problem');
}

interface RouteLike {
  method: string | string[];
  url: string;
  [hook: string]: unknown;
}

/** @fastify/swagger's per-route transform: adds what is derived from the route's guard and the error model. */
export function operationTransform(service: string) {
  const prefix = `POSTBUD_${service.toUpperCase()}`;
  return ({ schema, url, route }: { schema: Json | undefined; url: string; route: RouteLike }): { schema: Json; url: string } => {
    const s: Json = { ...(schema ?? {}) };
    if (s.hide) return { schema: s, url };
    const method = (Array.isArray(route.method) ? route.method[0]! : route.method).toUpperCase();
    const guard = guardOf(route);
    const declared = s.security as unknown[] | undefined;
    if (!guard && declared && declared.length > 0) throw new Error(`${method} ${url} declares security but runs no guard from shared/auth/guards.ts`);
    s.operationId ??= operationId(method, url);
    // A query parameter with a default is optional to the client (the validator fills it in).
    const query = s.querystring as Json | undefined;
    if (query && Array.isArray(query.required)) {
      const props = (query.properties ?? {}) as Record<string, Json>;
      s.querystring = { ...query, required: (query.required as string[]).filter((k) => props[k]?.default === undefined) };
    }
    s.security = securityFor(guard);
    const note = authNote(guard);
    if (note) s.description = s.description ? `${String(s.description)}\n\n${note}` : note;
    if (guard?.kind === 'citizen') s['x-postbud-acr'] = guard.minAcr ?? ACR_LEVELS[0];

    const limited = !isRateLimitExempt(url);
    const extraHeaders = (s.responseHeaders ?? {}) as Record<string, Json>;
    delete s.responseHeaders;
    const errorShape = s.errorShape as { mediaType: string; schema: unknown } | undefined;
    delete s.errorShape;
    const headersFor = (status: number): Json => ({
      ...REQUEST_ID_HEADER,
      ...(limited && status < 500 ? RATE_LIMIT_HEADERS : {}),
      ...(status === 429 ? RETRY_AFTER : {}),
      ...(status === 401 ? WWW_AUTHENTICATE : {}),
      ...(extraHeaders[status] ?? {}),
    });

    const raw = { ...((s.response ?? {}) as Record<string, unknown>) };
    const statuses = new Set(Object.keys(raw).map(Number));
    if (guard) statuses.add(401).add(403);
    if (BODY_METHODS.has(method)) statuses.add(413).add(415);
    if (s.body || s.querystring || s.params || s.headers) statuses.add(400);
    // The router refuses a path segment longer than any resource id (maxParamLength) before the route runs.
    if (s.params) statuses.add(414);
    if (limited) statuses.add(429);
    statuses.add(500).add(503);

    const response: Json = {};
    for (const status of [...statuses].sort((a, b) => a - b)) {
      const given = raw[String(status)] as Json | undefined;
      if (status >= 400 && errorShape && (given === undefined || isProblemSchema(given) || sameNamedSchema(given, errorShape.schema))) {
        response[status] = shapedErrorResponse(prefix, status, headersFor(status), errorShape);
        continue;
      }
      if (status >= 400 && (given === undefined || isProblemSchema(given))) {
        response[status] = problemResponse(prefix, status, headersFor(status));
        continue;
      }
      if (!given) continue;
      const description = (given.description as string | undefined) ?? STATUS_CODES[status] ?? 'Response';
      if (given.type === 'null') response[status] = { ...given, description, headers: headersFor(status) };
      else if (given.content) response[status] = { ...given, description, headers: headersFor(status) };
      else response[status] = { description, headers: headersFor(status), content: { 'application/json': { schema: given } } };
    }
    s.response = response;
    return { schema: s, url };
  };
}

/** The service's default base URL under `npm start`, and the hub's production shape. */
function servers(service: string): Json[] {
  return [
    { url: `https://${service}.postbud.example`, description: 'production: a deployment, each service on its own host name behind TLS', 'x-internal': false },
    {
      url: `http://localhost:${SERVICE_PORTS[service as keyof typeof SERVICE_PORTS] ?? 3000}`,
      description: 'local development: `npm start`, plain HTTP on loopback only',
      'x-internal': true,
    },
  ];
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Replaces every schema with a `title` by a $ref to components.schemas[title] (one definition per title). */
function hoistNamedSchemas(doc: Json): void {
  const components = ((doc.components as Json).schemas ??= {}) as Json;
  const seen = new Map<string, string>();
  const visit = (node: unknown, inComponent?: string): unknown => {
    if (Array.isArray(node)) return node.map((n) => visit(n));
    if (!isObject(node)) return node;
    const title = node.title;
    const out: Json = {};
    for (const [k, v] of Object.entries(node)) out[k] = k === 'example' || k === 'examples' || k === 'default' || k === 'const' || k === 'enum' ? v : visit(v);
    if (typeof title === 'string' && /^[A-Z][A-Za-z0-9]*$/.test(title) && title !== inComponent && ('type' in node || 'allOf' in node || 'anyOf' in node || 'oneOf' in node)) {
      // @fastify/swagger moves a request body's `examples` onto its media type: a schema used both
      // as a body and elsewhere is the same schema with or without them (the definition keeps them).
      const { examples, ...rest } = out;
      const text = JSON.stringify(rest);
      const before = seen.get(title);
      if (before !== undefined && before !== text) throw new Error(`Two different schemas are named ${title}`);
      seen.set(title, text);
      if (examples !== undefined || !(title in components)) components[title] = out;
      return { $ref: `#/components/schemas/${title}` };
    }
    return out;
  };
  doc.paths = visit(doc.paths);
  // Named schemas inside named schemas are hoisted too.
  for (const [name, schema] of Object.entries(components)) {
    const inner = visit(schema, name) as Json;
    components[name] = inner;
  }
}

function addExamples(doc: Json): void {
  const components = ((doc.components as Json).schemas ?? {}) as Json;
  for (const item of Object.values(doc.paths as Json)) {
    for (const op of Object.values(item as Json)) {
      if (!isObject(op)) continue;
      const medias: [Json, boolean][] = [];
      const body = (op.requestBody as Json | undefined)?.content as Json | undefined;
      for (const m of Object.values(body ?? {})) medias.push([m as Json, true]);
      for (const [status, res] of Object.entries((op.responses ?? {}) as Json)) {
        if (!status.startsWith('2')) continue;
        for (const m of Object.values(((res as Json).content ?? {}) as Json)) medias.push([m as Json, false]);
      }
      for (const [media] of medias) {
        if ('example' in media || 'examples' in media) continue;
        const schema = media.schema as Json | undefined;
        if (!schema) continue;
        const given = Array.isArray(schema.examples) ? schema.examples[0] : undefined;
        const value = given !== undefined ? given : exampleFor(schema, components);
        if (value !== undefined) media.example = value;
      }
    }
  }
}

/**
 * Every integer states its representation (`format` int32 or int64, from its bounds): the
 * services are JavaScript, so no integer they take or give exceeds 2^53.
 */
function describeIntegers(node: unknown): void {
  if (Array.isArray(node)) node.forEach(describeIntegers);
  if (!isObject(node)) return;
  if (node.type === 'integer' && node.format === undefined) {
    const max = typeof node.maximum === 'number' ? node.maximum : Infinity;
    const min = typeof node.minimum === 'number' ? node.minimum : -Infinity;
    node.format = max <= 2 ** 31 - 1 && min >= -(2 ** 31) ? 'int32' : 'int64';
  }
  for (const [k, v] of Object.entries(node)) if (k !== 'example' && k !== 'examples') describeIntegers(v);
}

const COMMON_HEADERS: Record<string, Json> = { ...REQUEST_ID_HEADER, ...RATE_LIMIT_HEADERS, ...RETRY_AFTER, ...WWW_AUTHENTICATE };

/**
 * The common headers become components.headers, and an error response that several operations
 * give identically becomes components.responses.Problem<status>: one definition, referenced.
 */
function shareResponses(doc: Json): void {
  const components = doc.components as Json;
  const headers: Json = {};
  const asRef = (name: string, header: Json): Json => {
    const { description, ...schema } = COMMON_HEADERS[name]!;
    if (JSON.stringify(header) !== JSON.stringify({ schema, description })) return header;
    headers[name] = header;
    return { $ref: `#/components/headers/${name}` };
  };
  // Shared per error shape and status: Problem400 (problem+json), NextMoveError400 (a route's own shape), ...
  const shapeOf = (res: Json): string => {
    const content = (res.content ?? {}) as Json;
    if (PROBLEM_CONTENT_TYPE in content) return 'Problem';
    const first = Object.values(content)[0] as Json | undefined;
    const ref = (((first?.schema as Json | undefined)?.allOf as Json[] | undefined)?.[0]?.$ref ?? '') as string;
    return ref.split('/').pop() || 'Error';
  };
  const byStatus = new Map<string, { text: string; count: number; value: Json }[]>();
  const ops: Json[] = [];
  for (const item of Object.values(doc.paths as Json)) for (const op of Object.values(item as Json)) if (isObject(op)) ops.push(op);
  for (const op of ops) {
    for (const [status, res] of Object.entries((op.responses ?? {}) as Record<string, Json>)) {
      for (const [name, header] of Object.entries((res.headers ?? {}) as Record<string, Json>)) {
        if (name in COMMON_HEADERS) (res.headers as Json)[name] = asRef(name, header);
      }
      if (Number(status) < 400) continue;
      const text = JSON.stringify(res);
      const key = `${shapeOf(res)}${status}`;
      const variants = byStatus.get(key) ?? [];
      const same = variants.find((v) => v.text === text);
      if (same) same.count++;
      else variants.push({ text, count: 1, value: res });
      byStatus.set(key, variants);
    }
  }
  const responses: Json = {};
  for (const [key, variants] of byStatus) {
    const status = key.slice(-3);
    const shared = variants.reduce((a, b) => (b.count > a.count ? b : a));
    // An error answer of another shape that one operation gives (readiness's report) stays inline.
    if (!key.startsWith('Problem') && shared.count < 2) continue;
    responses[key] = shared.value;
    for (const op of ops) {
      const r = op.responses as Record<string, Json> | undefined;
      if (r?.[status] && JSON.stringify(r[status]) === shared.text) r[status] = { $ref: `#/components/responses/${key}` };
    }
  }
  if (Object.keys(headers).length > 0) components.headers = Object.fromEntries(Object.entries(headers).sort(([a], [b]) => a.localeCompare(b)));
  if (Object.keys(responses).length > 0) components.responses = Object.fromEntries(Object.entries(responses).sort(([a], [b]) => a.localeCompare(b)));
}

/** @fastify/swagger's transformObject: tags with descriptions, servers, named schemas, examples. */
export function documentTransform(service: string) {
  return ({ openapiObject }: { openapiObject: Json }): Json => {
    const doc = openapiObject;
    const used = new Set<string>();
    for (const item of Object.values(doc.paths as Json)) for (const op of Object.values(item as Json)) for (const t of ((op as Json).tags as string[] | undefined) ?? []) used.add(t);
    doc.tags = [...used].sort().map((name) => {
      const description = API_TAGS[name];
      if (!description) throw new Error(`Tag ${name} has no description in shared/app/api-tags.ts`);
      return { name, description };
    });
    doc.servers = servers(service);
    hoistNamedSchemas(doc);
    addExamples(doc);
    describeIntegers(doc);
    shareResponses(doc);
    // Only the security schemes this service's operations use.
    const schemes = (doc.components as Json).securitySchemes as Json;
    const usedSchemes = new Set<string>();
    for (const item of Object.values(doc.paths as Json)) for (const op of Object.values(item as Json)) for (const req of ((op as Json).security as Json[] | undefined) ?? []) for (const k of Object.keys(req)) usedSchemes.add(k);
    (doc.components as Json).securitySchemes = Object.fromEntries(Object.entries(schemes).filter(([k]) => usedSchemes.has(k)));
    return doc;
  };
}

/**
 * 415 for a body whose media type the route does not list (any parser registered in the same
 * plugin would otherwise take it), with the accepted list. Runs after parsing and the route's
 * onRequest guard, before schema validation.
 */
export function installContentTypeCheck(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    if (!BODY_METHODS.has(request.method)) return;
    const header = request.headers['content-type'];
    if (typeof header !== 'string') return;
    const essence = header.split(';')[0]!.trim().toLowerCase();
    const accepted = acceptedFor(request);
    if (!accepted.includes(essence)) {
      const own = request.routeOptions.config.unsupportedMediaType;
      throw new Problem(own ?? commonProblems.UNSUPPORTED_MEDIA_TYPE, `${JSON.stringify(essence.slice(0, 100))} is not accepted here`, { accepted });
    }
  });
}
