/**
 * Malformed input on every field of every documented operation of the four services, generated
 * from the route schemas (through the OpenAPI documents they produce): path, query and header
 * parameters, each JSON body field, the multipart `message` part's fields and the JSON-lines
 * import's fields. A new route or field is covered without being listed here.
 *
 * Every answer must be below 500, every error answer problem+json or the error shape its operation
 * documents instead (the next-move API under /api/), its body valid against the schema documented
 * for its status, and a U+0000 or a non-finite number must be refused with a 400 that names the
 * field (or accepted and stored intact).
 */
import t from 'tap';
import { apiWorld, documentedRequest, encodeBody, parametersOf, type Json, type Operation, type Request } from '../helpers/api-world.js';
import { responseValidator } from '../helpers/spec-validator.js';

interface Mutation {
  label: string;
  req: Request;
  /** The field the bad value went into: a 400 must name it. */
  field?: string;
  strict: boolean;
}

const TEXT_VALUES: [string, string, boolean][] = [
  ['U+0000', 'a\u0000b', true],
  ['Infinity', 'Infinity', false],
  ['-Infinity', '-Infinity', false],
  ['NaN', 'NaN', false],
  ['1e400', '1e400', false],
  ['__proto__', '__proto__', false],
  ['constructor', 'constructor', false],
  ['hasOwnProperty', 'hasOwnProperty', false],
  ['empty', '', false],
  ['long', 'x'.repeat(4096), false],
  ['-1', '-1', false],
  ['huge integer', '9'.repeat(40), false],
];

/** Every leaf (and object) of a JSON value, by JSON pointer. */
function pointers(value: unknown, at = ''): { at: string; value: unknown }[] {
  const out = [{ at, value }];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...pointers(v, `${at}/${i}`)));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) out.push(...pointers(v, `${at}/${k}`));
  return out;
}

function setAt(value: unknown, at: string, replacement: unknown): unknown {
  if (at === '') return replacement;
  const copy = structuredClone(value) as Json;
  const keys = at.split('/').slice(1);
  let node: Json = copy;
  for (const k of keys.slice(0, -1)) node = node[k] as Json;
  node[keys[keys.length - 1]!] = replacement;
  return copy;
}

const MARK = '"__postbud_raw__"';

/** JSON text of `value` with the field at `at` replaced by raw JSON text (e.g. 1e400, which JSON.stringify cannot write). */
function withRaw(value: unknown, at: string, raw: string): string {
  return JSON.stringify(setAt(value, at, '__postbud_raw__')).replace(MARK, raw);
}

function bodyMutations(base: Request, mediaType: string, example: unknown): Mutation[] {
  const out: Mutation[] = [];
  const multipart = mediaType === 'multipart/form-data';
  const lines = mediaType.includes('ndjson') || mediaType.includes('jsonl');
  // The part of the body whose fields are fuzzed: the message part of a letter, each import line.
  const target = multipart ? (example as Json).message : lines ? (JSON.parse(String(example).split('\n')[0] ?? '{}') as unknown) : example;
  const wrap = (inner: unknown, raw?: string): Request['body'] => {
    if (multipart) return encodeBody(mediaType, { ...(example as Json), message: inner }, raw);
    if (lines) return encodeBody(mediaType, [inner], raw);
    return encodeBody(mediaType, inner, raw);
  };
  for (const { at, value } of pointers(target)) {
    const field = at.split('/').filter((k) => !/^[0-9]+$/.test(k)).pop() ?? '';
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      out.push({ label: `${at || '/'} gets a key with U+0000`, req: { ...base, body: wrap(setAt(target, at, { ...(value as Json), 'k\u0000': 1 })) }, strict: false });
      out.push({ label: `${at || '/'} gets a __proto__ key`, req: { ...base, body: wrap(null, withRaw(target, at, JSON.stringify(value).replace(/^\{/, '{"__proto__":{"x":1},'))) }, strict: false });
      continue;
    }
    if (at === '') continue;
    out.push({ label: `${at} = "a\\u0000b"`, req: { ...base, body: wrap(setAt(target, at, 'a\u0000b')) }, field, strict: true });
    out.push({ label: `${at} = 1e400`, req: { ...base, body: wrap(null, withRaw(target, at, '1e400')) }, field, strict: true });
    for (const s of ['__proto__', 'constructor', 'toString', '', 'x'.repeat(5000)]) {
      out.push({ label: `${at} = ${JSON.stringify(s.slice(0, 12))}`, req: { ...base, body: wrap(setAt(target, at, s)) }, strict: false });
    }
    out.push({ label: `${at} = -1`, req: { ...base, body: wrap(setAt(target, at, -1)) }, strict: false });
    out.push({ label: `${at} = {}`, req: { ...base, body: wrap(setAt(target, at, {})) }, strict: false });
  }
  if (multipart) {
    const docs = ((target as Json | undefined)?.documents ?? []) as Json[];
    for (const mime of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      const message = { ...(target as Json), documents: docs.map((d) => ({ ...d, mime })) };
      out.push({ label: `document mime ${mime}`, req: { ...base, body: encodeBody(mediaType, { ...(example as Json), message }) }, strict: false });
    }
    const full = base.body!.payload as Buffer;
    for (const cut of [0.3, 0.6, 0.95]) {
      out.push({ label: `multipart cut at ${cut}`, req: { ...base, body: { contentType: base.body!.contentType, payload: full.subarray(0, Math.floor(full.length * cut)) } }, strict: false });
    }
    out.push({ label: 'multipart without boundary', req: { ...base, body: { contentType: 'multipart/form-data', payload: full } }, strict: false });
  } else if (base.body) {
    const text = String(base.body.payload);
    out.push({ label: 'body cut short', req: { ...base, body: { contentType: base.body.contentType, payload: text.slice(0, Math.max(1, Math.floor(text.length / 2))) } }, strict: false });
    out.push({ label: 'body with U+0000 bytes', req: { ...base, body: { contentType: base.body.contentType, payload: `${text}\u0000` } }, strict: false });
  }
  out.push({ label: 'body as text/plain', req: { ...base, body: { contentType: 'text/plain', payload: 'hello' } }, strict: false });
  out.push({ label: 'body as application/x-www-form-urlencoded', req: { ...base, body: { contentType: 'application/x-www-form-urlencoded', payload: 'a=1' } }, strict: false });
  return out;
}

function mutations(o: Operation, spec: Json, token: string | undefined): Mutation[] {
  const doc = documentedRequest(o, spec);
  const base: Request = { path: doc.path, query: doc.query, headers: doc.headers, body: doc.body, token };
  const out: Mutation[] = [{ label: 'documented request', req: base, strict: false }];
  for (const where of ['path', 'query', 'header'] as const) {
    const key = where === 'header' ? 'headers' : where;
    for (const p of parametersOf(o.op, where)) {
      const name = String(p.name);
      for (const [label, value, strict] of TEXT_VALUES) {
        if (where === 'header' && value.includes('\u0000')) continue; // not sendable in HTTP
        if (where === 'path' && value === '') continue; // another route
        out.push({ label: `${where} ${name} = ${label}`, req: { ...base, [key]: { ...base[key], [name]: value } }, field: name, strict });
      }
      if (where !== 'path') {
        const rest = { ...base[key] };
        delete rest[name];
        out.push({ label: `${where} ${name} missing`, req: { ...base, [key]: rest }, strict: false });
      }
    }
  }
  if (doc.mediaType) out.push(...bodyMutations(base, doc.mediaType, doc.example));
  return out;
}

/** An error answer in a media type the operation documents for it (readiness: its JSON report; /api/: next-move's error body). */
function documentedAs(o: Operation, spec: Json, status: number, type: string): boolean {
  let res = ((o.op.responses ?? {}) as Json)[String(status)] as Json | undefined;
  if (typeof res?.$ref === 'string') res = ((spec.components as Json).responses as Json)[res.$ref.split('/').pop()!] as Json | undefined;
  return Object.keys((res?.content ?? {}) as Json).some((media) => media !== 'application/problem+json' && type.startsWith(media));
}

t.setTimeout(15 * 60_000);

t.test('no bad input on any field of any route gives a 5xx or a non-problem error', async (t) => {
  const world = await apiWorld(t);
  const validators = Object.fromEntries(Object.entries(world.specs).map(([name, spec]) => [name, responseValidator(spec)]));
  t.ok(world.operations.length >= 40, `walks every documented operation (${world.operations.length})`);
  let sent = 0;
  for (const o of world.operations) {
    const token = await world.tokenFor(o);
    const failures: string[] = [];
    const all = mutations(o, world.specs[o.service]!, token);
    const documented = await world.inject(o, all[0]!.req);
    t.comment(`${o.service} ${o.method} ${o.path}: documented request ${documented.statusCode}, ${all.length} variants`);
    for (const m of all) {
      const res = await world.inject(o, m.req);
      sent++;
      const type = String(res.headers['content-type'] ?? '');
      // 503 is a capacity answer (readiness under load, load shedding), not a crash.
      if (res.statusCode >= 500 && res.statusCode !== 503) failures.push(`${m.label}: ${res.statusCode} ${res.body.slice(0, 200)}`);
      else if (res.statusCode >= 400 && !type.startsWith('application/problem+json') && !documentedAs(o, world.specs[o.service]!, res.statusCode, type)) failures.push(`${m.label}: ${res.statusCode} as ${type}`);
      else if (res.statusCode === 400 && m.strict && m.field && !res.body.includes(m.field)) failures.push(`${m.label}: 400 does not name ${m.field}: ${res.body.slice(0, 200)}`);
      else if (res.statusCode >= 400) {
        const wrong = validators[o.service]!(o.op, res);
        if (wrong.length > 0) failures.push(`${m.label}: ${res.statusCode} not as documented: ${wrong.join('; ').slice(0, 300)}`);
      }
    }
    t.same(failures, [], `${o.service} ${o.method} ${o.path}`);
  }
  t.ok(sent > 1000, `${sent} requests sent`);
  const nextMove = world.operations.filter((o) => o.path.startsWith('/api/'));
  t.ok(nextMove.length >= 15, `the next-move routes under /api/ are walked too (${nextMove.length})`);
});
