/**
 * Group commit for concurrent jobs: items that arrive while a batch is running wait for the next
 * one, so under load many jobs share one statement and one WAL flush, while a lone job runs at
 * once. `run` answers item by item, in order.
 */
export class Group<I, O> {
  private pending: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  private running = 0;

  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly max = 200,
    private readonly parallel = 1,
  ) {}

  add(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.running >= this.parallel || this.pending.length === 0) return;
    const batch = this.pending.splice(0, this.max);
    this.running++;
    this.run(batch.map((b) => b.item))
      .then(
        (out) => batch.forEach((b, i) => b.resolve(out[i]!)),
        (err: unknown) => batch.forEach((b) => b.reject(err)),
      )
      .finally(() => {
        this.running--;
        this.kick();
      });
  }
}
