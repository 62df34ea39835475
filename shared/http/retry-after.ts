/**
 * A request as a well-behaved client of a postbud API sends it: a 503 with `Retry-After` (an
 * intake shedding load, a dependency briefly down; docs/ingestion.md) is sent again after the time
 * it names, as it was, so under the same Idempotency-Key at most one letter results. Any other
 * answer, or the last 503 after `maxTries`, is returned as it is. The body must be re-sendable
 * (a string or a Buffer, not a stream).
 */
export async function fetchRetrying503(url: string, init: RequestInit, maxTries = 30): Promise<Response> {
  for (let i = 1; ; i++) {
    const res = await fetch(url, init);
    const after = Number(res.headers.get('retry-after'));
    if (res.status !== 503 || !Number.isFinite(after) || i >= maxTries) return res;
    await res.arrayBuffer();
    await new Promise((r) => setTimeout(r, after * 1000));
  }
}
