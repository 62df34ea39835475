/**
 * RFC 9457 problem details. Every error a client can see has a stable `type` URI per cause and
 * a `code` for log searches; services add their own types with their own code prefix.
 */

export const PROBLEM_BASE = 'https://postbud.dev/problems/';
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export interface ProblemType {
  /** Slug appended to PROBLEM_BASE; never changes once published. */
  readonly slug: string;
  readonly status: number;
  readonly title: string;
  /** e.g. POSTBUD_REGISTRY_INVALID_PERSON_ID */
  readonly code: string;
}

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  code: string;
  [extension: string]: unknown;
}

export class Problem extends Error {
  constructor(
    readonly problemType: ProblemType,
    readonly detail?: string,
    readonly extensions: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail ?? problemType.title);
    this.name = 'Problem';
  }

  get statusCode(): number {
    return this.problemType.status;
  }

  body(instance?: string): ProblemBody {
    return {
      type: PROBLEM_BASE + this.problemType.slug,
      title: this.problemType.title,
      status: this.problemType.status,
      ...(this.detail === undefined ? {} : { detail: this.detail }),
      ...(instance === undefined ? {} : { instance }),
      code: this.problemType.code,
      ...this.extensions,
    };
  }
}

const catalogues = new Map<string, ProblemType[]>();

/** Builds a service's catalogue of problem types with one code prefix. */
export function defineProblems<K extends string>(
  prefix: string,
  defs: Record<K, { slug: string; status: number; title: string }>,
): Record<K, ProblemType> {
  const out = {} as Record<K, ProblemType>;
  for (const key of Object.keys(defs) as K[]) {
    const d = defs[key];
    out[key] = { ...d, code: `${prefix}_${key}` };
  }
  catalogues.set(prefix, [...(catalogues.get(prefix) ?? []), ...Object.values<ProblemType>(out)]);
  return out;
}

/** Every problem type defined under these code prefixes (the API documents list them per status). */
export function problemTypes(...prefixes: string[]): ProblemType[] {
  return prefixes.flatMap((p) => catalogues.get(p) ?? []);
}

/** Problems any service can raise: HTTP-level causes that do not belong to one domain. */
export const commonProblems = defineProblems('POSTBUD', {
  VALIDATION: { slug: 'validation', status: 400, title: 'The request does not match the schema' },
  MALFORMED_BODY: { slug: 'malformed-body', status: 400, title: 'The request body could not be parsed' },
  UNAUTHENTICATED: { slug: 'unauthenticated', status: 401, title: 'A valid bearer token is required' },
  TOKEN_EXPIRED: { slug: 'token-expired', status: 401, title: 'The bearer token has expired' },
  FORBIDDEN_SCOPE: { slug: 'insufficient-scope', status: 403, title: 'The token lacks a scope this operation needs' },
  FORBIDDEN: { slug: 'forbidden', status: 403, title: 'This client may not perform this operation' },
  INSUFFICIENT_ACR: { slug: 'insufficient-security-level', status: 403, title: 'A higher ID-porten security level is required' },
  NOT_FOUND: { slug: 'not-found', status: 404, title: 'No such resource' },
  METHOD_NOT_ALLOWED: { slug: 'method-not-allowed', status: 405, title: 'The resource does not support this method' },
  CONFLICT: { slug: 'conflict', status: 409, title: 'The request conflicts with the current state' },
  PAYLOAD_TOO_LARGE: { slug: 'payload-too-large', status: 413, title: 'The request body is too large' },
  URI_TOO_LONG: { slug: 'uri-too-long', status: 414, title: 'A path segment is longer than any resource id' },
  UNSUPPORTED_MEDIA_TYPE: { slug: 'unsupported-media-type', status: 415, title: 'The request content type is not supported' },
  RATE_LIMITED: { slug: 'rate-limited', status: 429, title: 'Too many requests' },
  INTERNAL: { slug: 'internal', status: 500, title: 'Internal error' },
  UNAVAILABLE: { slug: 'unavailable', status: 503, title: 'A dependency is unavailable' },
});
