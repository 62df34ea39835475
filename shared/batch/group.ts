/**
 * Group commit for concurrent work: items that arrive while a batch is running (or within
 * `windowMs` of the first one) wait for the next batch, so under load many items share one
 * statement, one transaction and one WAL flush, while a lone item runs at once (or after the
 * window). `run` answers item by item, in order, and must be all-or-nothing (one statement or one
 * transaction): a batch that fails is run again item by item, so one bad item fails alone
 * instead of taking its neighbours down with it.
 *
 * `maxQueued` bounds the items waiting for a batch: beyond it `add` rejects at once with
 * QueueFull, so an overloaded caller can shed load instead of letting latency grow without bound.
 */
export class QueueFull extends Error {
  override name = 'QueueFull';
}

export interface GroupOptions {
  /** Items per batch at most (default 200). */
  max?: number;
  /** Batches running at once (default 1). */
  parallel?: number;
  /** How long the first item of an idle group waits for company (default 0: run at once). */
  windowMs?: number;
  /** Items waiting for a batch at most; more are refused with QueueFull (default unbounded). */
  maxQueued?: number;
  /** Told the size of every batch that starts (metrics). */
  onBatch?: (size: number) => void;
}

interface Pending<I, O> {
  item: I;
  resolve: (o: O) => void;
  reject: (e: unknown) => void;
}

export class Group<I, O> {
  private pending: Pending<I, O>[] = [];
  private running = 0;
  private paused = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly opts: Required<Omit<GroupOptions, 'onBatch'>> & Pick<GroupOptions, 'onBatch'>;

  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    maxOrOptions: number | GroupOptions = {},
    parallel = 1,
  ) {
    const o = typeof maxOrOptions === 'number' ? { max: maxOrOptions, parallel } : maxOrOptions;
    this.opts = { max: o.max ?? 200, parallel: o.parallel ?? 1, windowMs: o.windowMs ?? 0, maxQueued: o.maxQueued ?? Infinity, onBatch: o.onBatch };
  }

  /** Items waiting for a batch. */
  get queued(): number {
    return this.pending.length;
  }

  add(item: I): Promise<O> {
    if (this.pending.length >= this.opts.maxQueued) return Promise.reject(new QueueFull(`more than ${this.opts.maxQueued} items waiting`));
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /**
   * Holds every new batch until the returned function is called (a control point for tests and
   * benchmarks: what arrives meanwhile forms one batch).
   */
  pause(): () => void {
    this.paused++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.paused--;
      this.kick();
    };
  }

  private schedule(): void {
    if (this.opts.windowMs <= 0 || this.running > 0 || this.pending.length >= this.opts.max) return this.kick();
    // An idle group waits a moment for company; a busy one batches what arrives meanwhile anyway.
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.kick();
    }, this.opts.windowMs);
  }

  private kick(): void {
    while (this.paused === 0 && this.running < this.opts.parallel && this.pending.length > 0) {
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
      const batch = this.pending.splice(0, this.opts.max);
      this.opts.onBatch?.(batch.length);
      this.running++;
      this.settle(batch)
        .catch(async (err: unknown) => {
          if (batch.length === 1) return batch[0]!.reject(err);
          await Promise.all(batch.map((b) => this.settle([b]).catch(b.reject)));
        })
        .finally(() => {
          this.running--;
          this.kick();
        });
    }
  }

  private async settle(batch: Pending<I, O>[]): Promise<void> {
    const out = await this.run(batch.map((b) => b.item));
    batch.forEach((b, i) => b.resolve(out[i]!));
  }
}
