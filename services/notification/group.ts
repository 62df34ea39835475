/**
 * Group commit for concurrent jobs: items that arrive while a batch is running wait for the next
 * one, so under load many jobs share one statement and one WAL flush, while a lone job runs at
 * once. `run` answers item by item, in order, and must be all-or-nothing (one statement or one
 * transaction): a batch that fails is run again item by item, so one bad item fails alone instead
 * of taking its neighbours down with it.
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

  private async settle(batch: typeof this.pending): Promise<void> {
    const out = await this.run(batch.map((b) => b.item));
    batch.forEach((b, i) => b.resolve(out[i]!));
  }
}
