import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { Problem } from '../../../shared/errors/problem.js';
import { ingestionProblems, intakeOverloaded } from '../problems.js';

/**
 * Bounds on letters being uploaded (read and sealed, before they join a batch): per process, so
 * an overloaded intake refuses at once (503 + Retry-After) instead of queueing without bound,
 * and per client, so one sender's stalled or slow uploads cannot take every slot (429).
 * No upload holds a database connection (see submitLetter), so these bound memory and work,
 * not the pool.
 */
export class UploadSlots {
  private total = 0;
  private readonly perClient = new Map<string, number>();

  constructor(
    private readonly max: number,
    private readonly maxPerClient: number,
  ) {}

  get inFlight(): number {
    return this.total;
  }

  /** Takes a slot for `client` or throws; the returned function gives it back (once). */
  take(client: string): () => void {
    if (this.total >= this.max) {
      throw intakeOverloaded('The intake is taking as many letters as it can');
    }
    const mine = this.perClient.get(client) ?? 0;
    if (mine >= this.maxPerClient) {
      throw new Problem(ingestionProblems.TOO_MANY_UPLOADS, `At most ${this.maxPerClient} letters may be uploading at once per client`, { limit: this.maxPerClient }, { 'retry-after': '1' });
    }
    this.total++;
    this.perClient.set(client, mine + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.total--;
      const left = (this.perClient.get(client) ?? 1) - 1;
      if (left > 0) this.perClient.set(client, left);
      else this.perClient.delete(client);
    };
  }
}

/**
 * Times an upload out: no byte from the client for `idleMs`, or the whole body not in after
 * `totalMs`. On expiry the part being read is destroyed with a 408 problem (which the reader
 * then throws) and `expired` rejects with it, for waits between parts. The problem asks for
 * `Connection: close`: the rest of the body is never read, so the connection cannot be reused.
 */
export class UploadWatchdog {
  readonly expired: Promise<never>;
  private fail!: (p: Problem) => void;
  private idle: NodeJS.Timeout | undefined;
  private total: NodeJS.Timeout | undefined;
  private current: Readable | undefined;
  private problem: Problem | undefined;
  private done = false;
  private readonly onData = () => this.armIdle();

  constructor(
    private readonly raw: IncomingMessage,
    private readonly idleMs: number,
    private readonly totalMs: number,
  ) {
    this.expired = new Promise<never>((_, reject) => (this.fail = reject));
    this.expired.catch(() => undefined); // observed through race() and the parts it destroys
  }

  /**
   * Starts the clocks. Called once the multipart parser has been piped the request: a 'data'
   * listener added before that would start the stream flowing with nobody reading it.
   */
  start(): void {
    if (this.total || this.problem || this.done) return;
    this.total = setTimeout(() => this.expire(`The upload took longer than ${this.totalMs} ms`), this.totalMs);
    this.armIdle();
    this.raw.on('data', this.onData);
  }

  private armIdle(): void {
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.expire(`No data received for ${this.idleMs} ms`), this.idleMs);
  }

  private expire(detail: string): void {
    if (this.problem) return;
    this.problem = new Problem(ingestionProblems.UPLOAD_TIMEOUT, detail, {}, { connection: 'close' });
    const reading = this.current;
    this.stop();
    reading?.destroy(this.problem);
    this.fail(this.problem);
  }

  /** The file part being read now (destroyed on expiry). */
  reading(stream: Readable): void {
    if (this.problem) stream.destroy(this.problem);
    this.current = stream;
  }

  /** `p`, or the timeout if it comes first. */
  race<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.expired]);
  }

  /** The body is in: no more timeouts. */
  stop(): void {
    this.done = true;
    clearTimeout(this.idle);
    clearTimeout(this.total);
    this.raw.off('data', this.onData);
    this.current = undefined;
  }
}
