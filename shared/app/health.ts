import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { Gauge } from 'prom-client';
import { Type } from 'typebox';
import { pendingMigrations } from '../db/migrate.js';
import type { ServiceDeps } from './deps.js';
import { causeOf, type Outages } from '../errors/outages.js';
import { unavailableDependency, type Dependency } from '../errors/unavailable.js';

const Check = Type.Object({
  ok: Type.Boolean(),
  /** Whether the service is unready without it (false: degraded only). */
  required: Type.Boolean(),
  detail: Type.Optional(Type.String()),
});
const Ready = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('degraded'), Type.Literal('not-ready')]),
  /** Age of the probe this answer comes from, milliseconds. */
  ageMs: Type.Integer(),
  checks: Type.Object({ database: Check, queue: Check, migrations: Check }),
});

type CheckName = 'database' | 'queue' | 'migrations';
interface CheckResult {
  ok: boolean;
  required: boolean;
  detail?: string;
}
type Checks = Record<CheckName, CheckResult>;

export interface HealthOptions {
  /**
   * Whether the service cannot serve requests without the queue backend. Services that only write
   * the outbox (in Postgres) can: their jobs wait in the outbox until the queue is back, so a queue
   * outage makes them degraded, not unready (docs/foundation.md, 'Readiness').
   */
  queueRequired: boolean;
  probeMs: number;
  outages: Outages;
}

/** A check gets at least this long: a fresh connection on a busy machine can take a few hundred ms. */
const MIN_CHECK_DEADLINE_MS = 1000;
/**
 * The first probe, which readiness waits for, may take longer: it loads the migration list and
 * opens the first connections, and before it there is nothing true to answer.
 */
const FIRST_CHECK_DEADLINE_MS = 5000;

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

async function run(fn: () => Promise<string | undefined>, required: boolean, ms: number): Promise<CheckResult & { error?: unknown }> {
  try {
    const detail = await withDeadline(fn(), ms);
    return detail === undefined ? { ok: true, required } : { ok: false, required, detail };
  } catch (err) {
    return { ok: false, required, detail: err instanceof Error ? err.message : String(err), error: err };
  }
}

/**
 * Probes the dependencies in the background, in parallel, each with a deadline (one probe
 * interval, at least MIN_CHECK_DEADLINE_MS), and keeps the last answer: readiness then answers at once whatever is down (a stalled
 * check used to hold every readiness call for 2 s), and one probe serves every caller.
 */
class Prober {
  private last: { at: number; checks: Checks } | undefined;
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly slow: Record<Dependency, number> = { database: 0, queue: 0 };
  /** Once at the expected version the schema stays there (migrations only go forward): checked no more. */
  private migrated = false;

  constructor(
    private readonly deps: Pick<ServiceDeps, 'db' | 'queues'>,
    private readonly opts: HealthOptions,
  ) {}

  start(): void {
    void this.probe();
    this.timer = setInterval(() => void this.probe(), this.opts.probeMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /**
   * The latest answer. Before the first probe has finished there is nothing to tell, so that one is
   * awaited (its checks have their deadline); later a stale answer (the event loop starved the
   * timer) waits at most `waitMs` for a new probe.
   */
  async current(waitMs: number): Promise<{ at: number; checks: Checks } | undefined> {
    if (!this.last) await this.probe();
    else if (!this.fresh()) await Promise.race([this.probe(), new Promise((r) => setTimeout(r, waitMs).unref())]);
    return this.last;
  }

  private fresh(): boolean {
    return this.last !== undefined && Date.now() - this.last.at < this.opts.probeMs * 3;
  }

  private probe(): Promise<void> {
    this.running ??= this.runOnce().finally(() => (this.running = undefined));
    return this.running;
  }

  /**
   * Feeds the outage log and says whether the dependency counts as down: a failure that says it is
   * down (connection refused, the server starting up) counts at once; a check that merely ran out
   * of time counts on the second probe in a row (one slow answer on a busy machine is neither an
   * outage nor a reason to take the service out of rotation, but a server that stopped answering is).
   */
  private report(dependency: Dependency, result: CheckResult & { error?: unknown }): boolean {
    const { outages } = this.opts;
    if (result.ok) {
      this.slow[dependency] = 0;
      outages.up(dependency);
      return false;
    }
    const down = unavailableDependency(result.error) !== undefined;
    if (!down && ++this.slow[dependency] < 2) return false;
    outages.down(dependency, result.error ? causeOf(result.error) : (result.detail ?? 'probe failed'), false);
    return true;
  }

  /** The check as readiness shows it: a first slow answer after a good one keeps the good one. */
  private settle(dependency: Dependency, result: CheckResult & { error?: unknown }): CheckResult {
    const down = this.report(dependency, result);
    const before = this.last?.checks[dependency];
    if (!result.ok && !down && before?.ok) return before;
    return shown(result);
  }

  private async runOnce(): Promise<void> {
    const ms = this.last ? Math.max(MIN_CHECK_DEADLINE_MS, this.opts.probeMs) : FIRST_CHECK_DEADLINE_MS;
    const { db, queues } = this.deps;
    const [database, queue, migrations] = await Promise.all([
      run(async () => void (await sql`select 1`.execute(db.kysely)), true, ms),
      run(async () => void (await queues.ping()), this.opts.queueRequired, ms),
      run(async () => {
        if (this.migrated) return undefined;
        const pending = await pendingMigrations(db.kysely);
        this.migrated = pending.length === 0;
        return this.migrated ? undefined : `pending: ${pending.join(', ')}`;
      }, true, ms),
    ]);
    this.last = { at: Date.now(), checks: { database: this.settle('database', database), queue: this.settle('queue', queue), migrations: shown(migrations) } };
  }
}

/** A check's result as readiness shows it (the probe's error stays in the logs). */
function shown({ ok, required, detail }: CheckResult): CheckResult {
  return { ok, required, ...(detail === undefined ? {} : { detail }) };
}

function statusOf(checks: Checks): 'ready' | 'degraded' | 'not-ready' {
  const all = Object.values(checks);
  if (all.some((c) => c.required && !c.ok)) return 'not-ready';
  return all.some((c) => !c.ok) ? 'degraded' : 'ready';
}

/**
 * Liveness says the process runs; readiness says it can serve requests: database reachable and
 * the schema at the version this code expects, and the queue backend where the service needs it.
 * A dependency it can do without is reported (`degraded`, in the body and in /metrics).
 */
export function installHealth(app: FastifyInstance, deps: Pick<ServiceDeps, 'db' | 'queues'>, opts: HealthOptions): void {
  const prober = new Prober(deps, opts);
  app.addHook('onReady', async () => prober.start());
  app.addHook('onClose', async () => prober.stop());

  app.get('/health/live', { schema: { tags: ['health'], summary: 'Liveness: the process runs', description: 'Public and not rate-limited, for orchestrators. Never touches a dependency.', response: { 200: Type.Object({ status: Type.Literal('live') }) } } }, async () => ({
    status: 'live' as const,
  }));

  app.get(
    '/health/ready',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness: database, migrations and (where required) the queue backend',
        description: 'Public and not rate-limited, for orchestrators and load balancers: 200 when the service can serve requests (`ready`, or `degraded` when only a dependency it can do without is down), 503 `not-ready` otherwise. Answers from the last background probe, within ~100 ms.',
        response: { 200: Ready, 503: Ready },
      },
    },
    async (_request, reply) => {
      const last = await prober.current(80);
      const unknown: CheckResult = { ok: false, required: true, detail: 'not probed yet' };
      const checks = last?.checks ?? { database: unknown, queue: { ...unknown, required: opts.queueRequired }, migrations: unknown };
      const status = statusOf(checks);
      return reply.code(status === 'not-ready' ? 503 : 200).send({ status, ageMs: last ? Math.max(0, Date.now() - last.at) : 0, checks });
    },
  );

  new Gauge({
    name: 'health_dependency_up',
    help: 'Whether each dependency answered the last readiness probe (required="false": the service only degrades without it)',
    labelNames: ['dependency', 'required'],
    registers: [app.metrics],
    async collect() {
      this.reset();
      const last = await prober.current(80);
      if (!last) return;
      for (const [name, c] of Object.entries(last.checks)) this.set({ dependency: name, required: String(c.required) }, c.ok ? 1 : 0);
    },
  });
  new Gauge({
    name: 'health_status',
    help: 'Readiness of the service: 1 for its current status (ready, degraded or not-ready), 0 for the others',
    labelNames: ['status'],
    registers: [app.metrics],
    async collect() {
      this.reset();
      const last = await prober.current(80);
      const status = last ? statusOf(last.checks) : 'not-ready';
      for (const s of ['ready', 'degraded', 'not-ready']) this.set({ status: s }, s === status ? 1 : 0);
    },
  });
}
