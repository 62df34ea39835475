import { existsSync } from 'node:fs';
import path from 'node:path';

/** The folder holding package.json, found from this file both in the source tree and in dist/. */
export function projectRoot(): string {
  let dir = import.meta.dirname;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + import.meta.dirname);
    dir = up;
  }
  return dir;
}
