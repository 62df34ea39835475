import autocannon from 'autocannon';

export interface LoadResult {
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
  /** Answers by status code. */
  statuses: Record<number, number>;
  /** p50/p99 of the 2xx answers only (what accepted requests saw). */
  okP50Ms: number;
  okP99Ms: number;
}

const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : 0);

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
  const statuses: Record<number, number> = {};
  const okTimes: number[] = [];
  let finished!: (r: autocannon.Result) => void;
  let failed!: (e: unknown) => void;
  const done = new Promise<autocannon.Result>((resolve, reject) => ((finished = resolve), (failed = reject)));
  const instance = autocannon(
    {
    url: opts.url,
    method: opts.method ?? 'GET',
    body: opts.body,
    headers: opts.headers,
    connections,
    duration: opts.durationS ?? 10,
    ...(opts.rate ? { overallRate: opts.rate } : {}),
    ...(opts.idReplacement ? { idReplacement: true } : {}),
    },
    (err, r) => (err ? failed(err) : finished(r)),
  );
  instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    statuses[status] = (statuses[status] ?? 0) + 1;
    if (status >= 200 && status < 300) okTimes.push(ms);
  });
  const result = await done;
  okTimes.sort((a, b) => a - b);
  return {
    statuses,
    okP50Ms: percentile(okTimes, 50),
    okP99Ms: percentile(okTimes, 99),
    requestsPerSec: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}
