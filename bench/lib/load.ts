import autocannon from 'autocannon';

export interface LoadResult {
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
}

/** One autocannon run; `rate` fixes the offered load (requests/s overall) for latency at that rate. */
export async function load(opts: {
  url: string;
  method?: 'GET' | 'POST';
  body?: Buffer | string;
  headers?: Record<string, string>;
  connections?: number;
  durationS?: number;
  rate?: number;
  /** Replace `[<id>]` in the request (headers and body) with a fresh id per request, e.g. an Idempotency-Key. */
  idReplacement?: boolean;
}): Promise<LoadResult> {
  const connections = opts.connections ?? 32;
  const result = await autocannon({
    url: opts.url,
    method: opts.method ?? 'GET',
    body: opts.body,
    headers: opts.headers,
    connections,
    duration: opts.durationS ?? 10,
    ...(opts.rate ? { overallRate: opts.rate } : {}),
    ...(opts.idReplacement ? { idReplacement: true } : {}),
  });
  return {
    requestsPerSec: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}
