/**
 * `npm run bench [name ...]`: runs the benchmark scripts one after another (each prints its
 * table and writes bench/results/<name>.json). Without names, all of them, baseline first.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../shared/runtime/project-root.js';

const ALL = ['baseline', 'lookup', 'storage', 'intake', 'bulk', 'evidence-log', 'alerts'];
const names = process.argv.slice(2).length ? process.argv.slice(2) : ALL;
const root = projectRoot();
let failed = 0;
for (const name of names) {
  const file = path.join(root, 'bench', `${name}.ts`);
  if (!existsSync(file)) {
    if (process.argv.slice(2).includes(name)) throw new Error(`no bench/${name}.ts`);
    continue;
  }
  const r = spawnSync(process.execPath, ['--import', 'tsx', file], { stdio: 'inherit', cwd: root, env: process.env });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
