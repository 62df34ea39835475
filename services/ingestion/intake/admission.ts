/**
 * Latency-aware admission for the intake, after CoDel (RFC 8289): static bounds (upload slots,
 * the batch queue) cap memory, but at three times capacity they still let a standing queue grow
 * until every accepted letter waits for the whole bound. Here the shortest time a letter took
 * from admission to answer is kept per interval; when even the fastest letter of a full interval
 * took longer than the target, the queue is standing, not a burst, and new letters are refused
 * (503 + Retry-After) until an interval's fastest letter is back under the target. A burst on an
 * idle intake is never refused: its first letters answer fast.
 */
export interface AdmissionOptions {
  /** Target sojourn (admission to answer) in ms; 0 turns latency shedding off. */
  targetMs: number;
  /** Length of one observation interval in ms. */
  intervalMs: number;
  now?: () => number;
}

export class Admission {
  private readonly now: () => number;
  private intervalStart: number;
  private fastest = Infinity;
  private standing = false;
  private inside = 0;

  constructor(private readonly opts: AdmissionOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.intervalStart = this.now();
  }

  /** Letters admitted and not yet answered. */
  get inFlight(): number {
    return this.inside;
  }

  /** Whether the queue is standing now (new letters are refused). */
  get shedding(): boolean {
    this.roll();
    return this.standing;
  }

  /**
   * Admits a letter: its ticket (the admission time) to give back with `leave`, or undefined
   * when the queue is standing and the letter must be refused.
   */
  enter(): number | undefined {
    if (this.opts.targetMs > 0 && this.shedding) return undefined;
    this.inside++;
    return this.now();
  }

  /** A letter admitted with `ticket` has been answered (whatever the answer). */
  leave(ticket: number): void {
    this.inside--;
    if (this.opts.targetMs <= 0) return;
    this.roll();
    const took = this.now() - ticket;
    if (took < this.fastest) this.fastest = took;
    // A fast answer, or nothing left waiting, ends a standing queue at once.
    if (this.standing && (took <= this.opts.targetMs || this.inside === 0)) this.standing = false;
  }

  /** Closes the interval once it has passed: one without answers leaves the verdict as it was. */
  private roll(): void {
    const t = this.now();
    if (t - this.intervalStart < this.opts.intervalMs) return;
    if (this.fastest !== Infinity) this.standing = this.fastest > this.opts.targetMs && this.inside > 0;
    this.fastest = Infinity;
    this.intervalStart = t;
  }
}
