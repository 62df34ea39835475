import type { Dependency } from './unavailable.js';

interface Outage {
  since: number;
  failedRequests: number;
}

interface OutageLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/**
 * One log line when a dependency goes away and one when it is back, with how many requests were
 * answered 503 meanwhile: during an outage every request fails the same way, and a stack per
 * request (hundreds of lines a minute) hides everything else. The readiness probe reports both
 * ends; a request that meets the outage first starts it too.
 */
export class Outages {
  private readonly current = new Map<Dependency, Outage>();

  constructor(private readonly logger: OutageLogger) {}

  /** `dependency` failed; `cause` is an error code or a short, data-free reason. */
  down(dependency: Dependency, cause: string, byRequest: boolean): void {
    let o = this.current.get(dependency);
    if (!o) {
      o = { since: Date.now(), failedRequests: 0 };
      this.current.set(dependency, o);
      this.logger.warn({ dependency, cause }, `${dependency} unavailable: requests that need it are answered 503 until it is back`);
    }
    if (byRequest) o.failedRequests++;
  }

  up(dependency: Dependency): void {
    const o = this.current.get(dependency);
    if (!o) return;
    this.current.delete(dependency);
    this.logger.info({ dependency, downMs: Date.now() - o.since, failedRequests: o.failedRequests }, `${dependency} available again`);
  }

  isDown(dependency: Dependency): boolean {
    return this.current.has(dependency);
  }
}

/** A short reason for the log: the error's code, else the start of its message (never request data). */
export function causeOf(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e?.code === 'string') return e.code;
  return typeof e?.message === 'string' ? e.message.slice(0, 120) : 'unknown';
}
