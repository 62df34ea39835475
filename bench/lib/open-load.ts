import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { load, type LoadResult } from './load.js';

/**
 * Open-loop load at a fixed rate: request i is due at start + i / rate, whatever the answers
 * before it did, and its latency is counted from when it was due (so time spent waiting for a
 * free connection counts: no coordinated omission). autocannon's `overallRate` is not this: each
 * connection sends back to back until its quota for the current second is used up, so "500/s
 * over 64 connections" is a burst of 64 concurrent requests at every second boundary, and its
 * p99 is the time to drain that burst, not the latency at 500/s.
 *
 * `[<id>]` in a header value becomes a fresh UUID per request (an Idempotency-Key).
 */
export async function openLoad(opts: {
  url: string;
  method?: 'GET' | 'POST';
  body?: Buffer;
  headers?: Record<string, string>;
  rate: number;
  durationS?: number;
  /** Connections at most (kept alive); a request due while all are busy waits for one. */
  connections?: number;
}): Promise<LoadResult> {
  const durationMs = (opts.durationS ?? 10) * 1000;
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.connections ?? 256 });
  const url = new URL(opts.url);
  const headers = opts.headers ?? {};
  const templated = Object.entries(headers).filter(([, v]) => v.includes('[<id>]'));
  const statuses: Record<number, number> = {};
  const all: number[] = [];
  const ok: number[] = [];
  let errors = 0;
  let inFlight = 0;
  let settledAll: () => void = () => undefined;

  const send = (dueAt: number) => {
    inFlight++;
    const h: Record<string, string> = { ...headers };
    for (const [k, v] of templated) h[k] = v.replaceAll('[<id>]', randomUUID());
    if (opts.body) h['content-length'] = String(opts.body.length);
    const done = (status: number | undefined) => {
      const ms = performance.now() - dueAt;
      if (status === undefined) errors++;
      else {
        statuses[status] = (statuses[status] ?? 0) + 1;
        all.push(ms);
        if (status >= 200 && status < 300) ok.push(ms);
      }
      if (--inFlight === 0) settledAll();
    };
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname + url.search, method: opts.method ?? 'GET', headers: h, agent }, (res) => {
      res.resume();
      res.once('end', () => done(res.statusCode));
      res.once('error', () => done(undefined));
    });
    req.once('error', () => done(undefined));
    req.end(opts.body);
  };

  const start = performance.now();
  const interval = 1000 / opts.rate;
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      const elapsed = now - start;
      // Everything due by now goes out, each timed from its own due time.
      while (sent * interval <= Math.min(elapsed, durationMs) && sent * interval < durationMs) send(start + sent++ * interval);
      if (elapsed >= durationMs) return resolve();
      setTimeout(tick, Math.max(0, Math.min(interval, start + sent * interval - performance.now())));
    };
    tick();
  });
  if (inFlight > 0) await new Promise<void>((resolve) => (settledAll = resolve));
  agent.destroy();
  const elapsedS = (performance.now() - start) / 1000;
  const pct = (xs: number[], p: number) => {
    if (xs.length === 0) return 0;
    const sorted = [...xs].sort((a, b) => a - b);
    return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! * 100) / 100;
  };
  const completed = Object.values(statuses).reduce((a, b) => a + b, 0);
  return {
    statuses,
    okP50Ms: pct(ok, 50),
    okP99Ms: pct(ok, 99),
    requestsPerSec: Math.round((completed / elapsedS) * 10) / 10,
    p50Ms: pct(all, 50),
    p99Ms: pct(all, 99),
    errors,
    non2xx: completed - ok.length,
  };
}

/** A run at a fixed rate is open-loop (openLoad); without one, autocannon's closed loop finds the maximum. */
export function loadRun(opts: Parameters<typeof load>[0]): Promise<LoadResult> {
  if (!opts.rate) return load(opts);
  const { rate, url, method, headers, connections, durationS } = opts;
  return openLoad({ url, rate, ...(method ? { method } : {}), ...(headers ? { headers } : {}), ...(connections ? { connections } : {}), ...(durationS ? { durationS } : {}), ...(opts.body !== undefined ? { body: Buffer.from(opts.body) } : {}) });
}
