/**
 * An example value for a JSON Schema, for operations whose route gives none: the schema's own
 * `examples`/`default`/`const`/`enum` first, else a value built from its type and bounds (so it
 * always validates against the schema it documents). Deterministic: the committed documents
 * must not change between runs.
 */
type Json = Record<string, unknown>;

const FORMAT_EXAMPLES: Record<string, string> = {
  uuid: '0b8f2c4e-6a1d-4e3b-9c5f-7d2a1b3c4d5e',
  'date-time': '2026-03-02T09:30:00.000Z',
  date: '2026-03-02',
  uri: 'https://agency.example/receipts',
  email: 'ola.nordmann@example.no',
  binary: '',
};

const PATTERN_EXAMPLES: [RegExp, string][] = [
  [/^\^\[0-9\]\{9\}\$$/, '991825827'],
  [/^\^\[0-9\]\{1,18\}\$$/, '1'],
  [/^\^\[0-9a-f\]\{64\}\$$/, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
  [/^\^\[A-Z\]\{2\}\$$/, 'NO'],
  [/^\^\[0-9\]\{4\}-\[0-9\]\{2\}-\[0-9\]\{2\}\$$/, '2026-03-02'],
];

export function exampleFor(schema: unknown, components: Json, depth = 0): unknown {
  if (typeof schema !== 'object' || schema === null || depth > 12) return undefined;
  const s = schema as Json;
  if (typeof s.$ref === 'string') return exampleFor(components[s.$ref.replace('#/components/schemas/', '')], components, depth + 1);
  if (Array.isArray(s.examples) && s.examples.length > 0) return s.examples[0];
  if ('example' in s) return s.example;
  if ('const' in s) return s.const;
  if ('default' in s) return s.default;
  if (Array.isArray(s.enum) && s.enum.length > 0) return s.enum[0];
  for (const key of ['anyOf', 'oneOf'] as const) {
    const options = s[key] as unknown[] | undefined;
    if (options) {
      const nonNull = options.find((o) => (o as Json).type !== 'null') ?? options[0];
      return exampleFor(nonNull, components, depth + 1);
    }
  }
  if (Array.isArray(s.allOf)) {
    const parts = s.allOf.map((p) => exampleFor(p, components, depth + 1));
    const props = s.properties ? exampleFor({ type: 'object', properties: s.properties }, components, depth + 1) : {};
    return Object.assign({}, ...parts.filter((p) => typeof p === 'object'), props);
  }
  const type = Array.isArray(s.type) ? (s.type as string[]).find((t) => t !== 'null') : (s.type as string | undefined);
  switch (type) {
    case 'object': {
      const out: Json = {};
      for (const [k, v] of Object.entries((s.properties ?? {}) as Json)) {
        const value = exampleFor(v, components, depth + 1);
        if (value !== undefined) out[k] = value;
      }
      return out;
    }
    case 'array': {
      const item = exampleFor(s.items, components, depth + 1);
      const n = Math.max(1, Number(s.minItems ?? 1));
      return item === undefined ? [] : Array.from({ length: Math.min(n, 3) }, () => item);
    }
    case 'string': {
      if (typeof s.format === 'string' && s.format in FORMAT_EXAMPLES) return FORMAT_EXAMPLES[s.format];
      if (typeof s.pattern === 'string') {
        const known = PATTERN_EXAMPLES.find(([p]) => p.test(s.pattern as string));
        if (known) return known[1];
      }
      const min = Number(s.minLength ?? 0);
      const max = Number(s.maxLength ?? 64);
      const text = 'example';
      return (text.length < min ? text.padEnd(min, 'x') : text).slice(0, Math.max(min, Math.min(max, text.length)));
    }
    case 'integer':
    case 'number':
      return Math.max(Number(s.minimum ?? 0), Math.min(1, Number(s.maximum ?? 1)));
    case 'boolean':
      return true;
    case 'null':
      return null;
    default:
      return undefined;
  }
}
