import type { ChildProcess } from 'node:child_process';

/** A service started as its own process by a bench: waits until its readiness probe answers 200. */
export async function waitReady(url: string, child: ChildProcess): Promise<void> {
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`${url}: process exited (${child.exitCode})`);
    const ok = await fetch(`${url}/health/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (i > 600) throw new Error(`${url} did not become ready`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** SIGTERM, then waits for the exit (a graceful shutdown, so --cpu-prof profiles get written). */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/**
 * Queries the service process has sent since the last call, by text: the preload
 * (count-queries.mjs) prints them on SIGWINCH to the child's piped stderr.
 */
export function queriesSinceLast(child: ChildProcess): Promise<[string, number][]> {
  return new Promise((resolve) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += String(d);
      const m = /QUERYCOUNTS (.*)\n/.exec(buf);
      if (!m) return;
      child.stderr!.off('data', onData);
      resolve(JSON.parse(m[1]!) as [string, number][]);
    };
    child.stderr!.on('data', onData);
    child.kill('SIGWINCH');
  });
}
