import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../../shared/runtime/project-root.js';

export type Row = Record<string, string | number>;

/** Prints rows as an aligned table and writes them, with run facts, to bench/results/<name>.json. */
export function report(name: string, rows: Row[], notes: Record<string, unknown> = {}): string {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: string | number | undefined) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : (v ?? ''));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ');
  const out = [line(cols), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n');
  process.stdout.write(`\n## ${name}\n${out}\n`);
  const dir = path.join(projectRoot(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({ name, at: new Date().toISOString(), node: process.version, cpus: os.cpus().length, rssMb: Math.round(process.memoryUsage().rss / 1e6), rows, ...notes }, null, 2) + '\n',
  );
  return file;
}
