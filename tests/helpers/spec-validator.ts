import type { LightMyRequestResponse } from 'fastify';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { Json } from './api-world.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

/**
 * Checks an answer against an OpenAPI 3.1 document the way a validating proxy would: the status
 * is documented for the operation, the media type is one it documents for that status, the body
 * validates against that media type's schema, and every documented header that is sent matches
 * its schema. Returns what is wrong, empty when the answer is allowed.
 */
export function responseValidator(spec: Json): (op: Json, res: LightMyRequestResponse) => string[] {
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  addFormats(ajv);
  ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isSafeInteger(n) });
  ajv.addFormat('binary', true);
  ajv.addSchema({ $id: 'spec', components: spec.components }, 'spec');
  const rewrite = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(rewrite);
    if (node === null || typeof node !== 'object') return node;
    const out: Json = {};
    for (const [k, v] of Object.entries(node)) out[k] = k === '$ref' && typeof v === 'string' ? `spec${v}` : k === 'example' || k === 'examples' ? v : rewrite(v);
    return out;
  };
  const cache = new Map<unknown, ReturnType<Ajv2020['compile']>>();
  const compiled = (schema: unknown) => {
    let fn = cache.get(schema);
    if (!fn) {
      fn = ajv.compile(rewrite(schema) as Json);
      cache.set(schema, fn);
    }
    return fn;
  };

  /** A response or header object, following a $ref into components. */
  const deref = (node: Json | undefined): Json | undefined => {
    if (!node || typeof node.$ref !== 'string') return node;
    const [, , kind, name] = node.$ref.split('/');
    return ((spec.components as Json)[kind!] as Json)[name!] as Json;
  };

  return (op, res) => {
    const problems: string[] = [];
    const responses = (op.responses ?? {}) as Json;
    const documented = deref((responses[String(res.statusCode)] ?? responses[`${String(res.statusCode)[0]}XX`] ?? responses.default) as Json | undefined);
    if (!documented) return [`status ${res.statusCode} is not documented (${Object.keys(responses).join(', ')})`];
    const content = documented.content as Json | undefined;
    const type = String(res.headers['content-type'] ?? '').split(';')[0]!.trim();
    if (!content) {
      if (res.body.length > 0) problems.push(`status ${res.statusCode} is documented without a body, got ${res.body.length} bytes of ${type}`);
    } else {
      const media = content[type] as Json | undefined;
      if (!media) problems.push(`media type ${type} is not documented for ${res.statusCode} (${Object.keys(content).join(', ')})`);
      else if (type.includes('json')) {
        const validate = compiled(media.schema);
        if (!validate(JSON.parse(res.body))) problems.push(`body does not match the schema: ${ajv.errorsText(validate.errors).slice(0, 500)}`);
      }
    }
    for (const [name, header] of Object.entries((documented.headers ?? {}) as Json)) {
      const value = res.headers[name.toLowerCase()];
      if (value === undefined) continue;
      const schema = deref(header as Json)!.schema as Json;
      const typed = schema.type === 'integer' || schema.type === 'number' ? Number(value) : value;
      if (!compiled(schema)(typed)) problems.push(`header ${name}: ${String(value)} does not match its schema`);
    }
    return problems;
  };
}
