import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { load, type LoadResult } from './load.js';

/**
 * Open-loop load at a fixed rate: request i is due at start + i / rate, whatever the answers
 * before it did, and its latency is counted from when it was due (so time spent waiting for a
 * free connection counts: no coordinated omission). autocannon's `overallRate` is not this: each
 * connection sends back to back until its quota for the current second is used up, so "500/s
 * over 64 connections" is a burst of 64 concurrent requests at every second boundary, and its
 * p99 is the time to drain that burst, not the latency at 500/s.
 *
 * Requests go over plain keep-alive sockets, pre-serialized (only the `[<id>]` of a header, an
 * Idempotency-Key, is filled in per request), and answers are parsed no further than status and
 * length: the load generator shares the machine with the service, and node:http's client cost
 * about as much CPU per request as the service spends refusing one, which at three times
 * capacity is CPU the service does not get.
 */
export interface OpenLoadResult extends LoadResult {
  /** CPU the load generator itself used, as a share of one core over the run. */
  generatorCpuShare: number;
}

interface Conn {
  socket: net.Socket;
  buffered: Buffer;
  /** Due time of the request in flight on it, or undefined when idle. */
  dueAt: number | undefined;
}

export async function openLoad(opts: {
  url: string;
  method?: 'GET' | 'POST';
  body?: Buffer;
  headers?: Record<string, string>;
  rate: number;
  durationS?: number;
  /** Connections at most (kept alive); a request due while all are busy waits for one. */
  connections?: number;
}): Promise<OpenLoadResult> {
  const durationMs = (opts.durationS ?? 10) * 1000;
  const maxConns = opts.connections ?? 256;
  const url = new URL(opts.url);
  const body = opts.body ?? Buffer.alloc(0);
  const headerLines = Object.entries({ host: url.host, ...(opts.headers ?? {}), 'content-length': String(body.length) }).map(([k, v]) => `${k}: ${v}`);
  const head = `${opts.method ?? 'GET'} ${url.pathname}${url.search} HTTP/1.1\r\n${headerLines.join('\r\n')}\r\n\r\n`;
  const [before, after] = head.includes('[<id>]') ? (head.split('[<id>]', 2) as [string, string]) : [head, undefined];
  const headBefore = Buffer.from(before);

  const statuses: Record<number, number> = {};
  const all: number[] = [];
  const ok: number[] = [];
  let errors = 0;
  let inFlight = 0;
  let settledAll: () => void = () => undefined;
  const idle: Conn[] = [];
  const waiting: number[] = [];
  let open = 0;

  const finish = (status: number | undefined, dueAt: number) => {
    const ms = performance.now() - dueAt;
    if (status === undefined) errors++;
    else {
      statuses[status] = (statuses[status] ?? 0) + 1;
      all.push(ms);
      if (status >= 200 && status < 300) ok.push(ms);
    }
    if (--inFlight === 0) settledAll();
  };

  const write = (conn: Conn, dueAt: number) => {
    conn.dueAt = dueAt;
    conn.socket.cork();
    conn.socket.write(headBefore);
    if (after !== undefined) conn.socket.write(randomUUID() + after);
    if (body.length > 0) conn.socket.write(body);
    conn.socket.uncork();
  };

  const release = (conn: Conn) => {
    conn.dueAt = undefined;
    const next = waiting.shift();
    if (next !== undefined) write(conn, next);
    else idle.push(conn);
  };

  /** Parses as many whole answers as `conn.buffered` holds (status line, content-length, body). */
  const onData = (conn: Conn, chunk: Buffer) => {
    conn.buffered = conn.buffered.length ? Buffer.concat([conn.buffered, chunk]) : chunk;
    for (;;) {
      const end = conn.buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      const text = conn.buffered.subarray(0, end).toString('latin1');
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(text)?.[1] ?? 0);
      if (conn.buffered.length < end + 4 + length) return;
      conn.buffered = conn.buffered.subarray(end + 4 + length);
      const status = Number(text.slice(9, 12));
      const dueAt = conn.dueAt!;
      const closing = /\r\nconnection:\s*close/i.test(text);
      finish(status, dueAt);
      if (closing) {
        conn.dueAt = undefined;
        conn.socket.destroy();
        return;
      }
      release(conn);
    }
  };

  const connect = (dueAt: number) => {
    open++;
    const conn: Conn = { socket: net.connect({ host: url.hostname, port: Number(url.port), noDelay: true }), buffered: Buffer.alloc(0), dueAt: undefined };
    conn.socket.on('data', (chunk: Buffer) => onData(conn, chunk));
    conn.socket.on('error', () => undefined);
    conn.socket.on('close', () => {
      open--;
      const i = idle.indexOf(conn);
      if (i >= 0) idle.splice(i, 1);
      if (conn.dueAt !== undefined) finish(undefined, conn.dueAt);
      conn.dueAt = undefined;
      const next = waiting.shift();
      if (next !== undefined) connect(next);
    });
    write(conn, dueAt);
  };

  const send = (dueAt: number) => {
    inFlight++;
    const conn = idle.pop();
    if (conn) write(conn, dueAt);
    else if (open < maxConns) connect(dueAt);
    else waiting.push(dueAt);
  };

  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  const interval = 1000 / opts.rate;
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const elapsed = performance.now() - start;
      // Everything due by now goes out, each timed from its own due time.
      while (sent * interval <= elapsed && sent * interval < durationMs) send(start + sent++ * interval);
      if (elapsed >= durationMs) return resolve();
      setTimeout(tick, Math.max(0, Math.min(interval, start + sent * interval - performance.now())));
    };
    tick();
  });
  if (inFlight > 0) await new Promise<void>((resolve) => (settledAll = resolve));
  const elapsedMs = performance.now() - start;
  const cpu = process.cpuUsage(cpuBefore);
  for (const conn of idle.splice(0)) conn.socket.destroy();
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
    requestsPerSec: Math.round((completed / (elapsedMs / 1000)) * 10) / 10,
    p50Ms: pct(all, 50),
    p99Ms: pct(all, 99),
    errors,
    non2xx: completed - ok.length,
    generatorCpuShare: Math.round(((cpu.user + cpu.system) / 1000 / elapsedMs) * 100) / 100,
  };
}

/** A run at a fixed rate is open-loop (openLoad); without one, autocannon's closed loop finds the maximum. */
export function loadRun(opts: Parameters<typeof load>[0]): Promise<LoadResult & { generatorCpuShare?: number }> {
  if (!opts.rate) return load(opts);
  const { rate, url, method, headers, connections, durationS } = opts;
  return openLoad({ url, rate, ...(method ? { method } : {}), ...(headers ? { headers } : {}), ...(connections ? { connections } : {}), ...(durationS ? { durationS } : {}), ...(opts.body !== undefined ? { body: Buffer.from(opts.body) } : {}) });
}
