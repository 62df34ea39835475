/**
 * Latency-aware admission for the intake: an adaptive bound on letters in flight (admitted, not
 * yet answered), AIMD on a CoDel signal (RFC 8289). Static bounds (upload slots, the batch queue)
 * cap memory, but at three times capacity they let a standing queue grow until every accepted
 * letter waits for the whole bound; an on/off gate instead admits bursts whenever it opens, and
 * the burst is the tail. So per interval the intake keeps the *shortest* time a letter took from
 * admission to answer: when even the fastest letter of an interval took longer than the target,
 * a queue is standing (not a burst) and the bound shrinks by a quarter; when the fastest was
 * under the target and the bound was reached, it grows by a tenth. A letter beyond the bound is
 * refused at once (503 + Retry-After). By Little's law the bound is what keeps latency flat:
 * in flight = throughput x latency, and throughput no longer grows once the machine is busy.
 *
 * The sojourn starts when a request is admitted, so it cannot see the time a request waited
 * before that: in the kernel's socket buffer and the HTTP parser, behind a saturated event loop.
 * At three times capacity that wait is most of the latency, and refusing costs event-loop time
 * too, so when letters were refused in an interval in which the loop was busy more than
 * `maxBusy` of the time (event-loop utilization), the bound shrinks as well: the loop keeps slack
 * to refuse promptly and to read admitted letters as they arrive.
 */
export interface AdmissionOptions {
  /** Target for the fastest sojourn (admission to answer) of an interval, ms; 0 turns the bound off. */
  targetMs: number;
  /** Length of one observation interval, ms. */
  intervalMs: number;
  /** Share (0..1) of an interval the event loop may be busy before the bound shrinks; 0 or absent: not watched. */
  maxBusy?: number;
  /** The event loop's busy share since the last call (default: performance.eventLoopUtilization). */
  busy?: () => number;
  /** Bound at start, and never more than `maxLimit` nor less than `minLimit`. */
  initialLimit?: number;
  minLimit?: number;
  maxLimit?: number;
  now?: () => number;
}

export class Admission {
  private readonly now: () => number;
  private readonly min: number;
  private readonly max: number;
  private bound: number;
  private intervalStart: number;
  private fastest = Infinity;
  /** Whether the bound was reached during this interval (only then may it grow). */
  private boundReached = false;
  /** Whether a letter was refused during this interval. */
  private refused = false;
  private inside = 0;
  private readonly busy: (() => number) | undefined;

  constructor(private readonly opts: AdmissionOptions) {
    if (opts.maxBusy) this.busy = opts.busy ?? loopUtilization();
    this.now = opts.now ?? (() => performance.now());
    this.min = Math.max(1, opts.minLimit ?? 4);
    this.max = Math.max(this.min, opts.maxLimit ?? 1024);
    this.bound = Math.min(this.max, Math.max(this.min, opts.initialLimit ?? 64));
    this.intervalStart = this.now();
  }

  /** Letters admitted and not yet answered. */
  get inFlight(): number {
    return this.inside;
  }

  /** The bound on letters in flight now (closing the interval first if it has passed). */
  currentLimit(): number {
    this.roll();
    return this.bound;
  }

  /** Whether a new letter would be refused now (closing the interval first if it has passed). */
  refusesNow(): boolean {
    if (this.opts.targetMs <= 0) return false;
    this.roll();
    return this.inside >= this.bound;
  }

  /** Admits a letter: its ticket (admission time) to give back with `leave`, or undefined when it must be refused. */
  enter(): number | undefined {
    if (this.opts.targetMs > 0) {
      this.roll();
      if (this.inside >= this.bound) {
        this.boundReached = true;
        this.refused = true;
        return undefined;
      }
      if (this.inside + 1 >= this.bound) this.boundReached = true;
    }
    this.inside++;
    return this.now();
  }

  /**
   * A letter admitted with `ticket` has been answered (whatever the answer). `measured` false
   * leaves its time out of the signal: a large letter's upload time is the client's bandwidth,
   * not a queue in the intake.
   */
  leave(ticket: number, measured = true): void {
    this.inside--;
    if (this.opts.targetMs <= 0 || !measured) return;
    this.roll();
    const took = this.now() - ticket;
    if (took < this.fastest) this.fastest = took;
  }

  /** Closes the interval once it has passed; one without answers changes nothing. */
  private roll(): void {
    const t = this.now();
    if (t - this.intervalStart < this.opts.intervalMs) return;
    // Only while letters are being refused: a loop kept busy by letters under the bound (a
    // closed-loop client at full speed) is doing its work, not queueing requests.
    const busy = this.busy?.() ?? 0;
    const saturated = this.refused && busy > this.opts.maxBusy!;
    if (this.fastest !== Infinity || saturated) {
      if (saturated || this.fastest > this.opts.targetMs) this.bound = Math.max(this.min, Math.floor(this.bound * 0.75));
      else if (this.boundReached) this.bound = Math.min(this.max, this.bound + Math.max(1, Math.ceil(this.bound / 10)));
    }
    this.fastest = Infinity;
    this.boundReached = false;
    this.refused = false;
    this.intervalStart = t;
  }
}

/** The event loop's utilization since the previous call (Node's own measure: busy time over elapsed time). */
function loopUtilization(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const delta = performance.eventLoopUtilization(now, last);
    last = now;
    return delta.utilization;
  };
}
