import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * CPU time and write syscalls of processes, from /proc (Linux). Clock ticks are 10 ms on
 * this kernel (CLK_TCK 100), so a figure is good to about 10 ms per process and run: runs of
 * several seconds make that small against the totals.
 */
const TICK_MS = 10;

function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; fields after its closing parenthesis are plain.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** utime + stime (ms) of a live process; with `children`, also of its waited-for children. */
export function cpuMs(pid: number, children = false): number {
  const f = statFields(pid);
  if (!f) return 0;
  // After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
  const ticks = Number(f[11]) + Number(f[12]) + (children ? Number(f[13]) + Number(f[14]) : 0);
  return ticks * TICK_MS;
}

const ppidOf = (pid: number): number | undefined => {
  const f = statFields(pid);
  return f ? Number(f[1]) : undefined;
};

/** Write syscalls (write, writev: sockets included) a process has made. */
export function writeSyscalls(pid: number): number {
  try {
    return Number(/syscw:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/**
 * CPU of a Postgres instance: its postmaster (with the backends that have exited, which it
 * waited for) plus every live child (backends, WAL writer, checkpointer ...). The postmaster's
 * pid is the first line of postmaster.pid in its data directory.
 */
export function postgresCpuMs(pgDataDir: string): number {
  let postmaster: number;
  try {
    postmaster = Number(readFileSync(path.join(pgDataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return 0;
  }
  let total = cpuMs(postmaster, true);
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (Number.isInteger(pid) && ppidOf(pid) === postmaster) total += cpuMs(pid);
  }
  return total;
}
