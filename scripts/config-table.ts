/** Rewrites the settings table in README.md from shared/config/settings.ts. */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { settings } from '../shared/config/settings.js';
import { projectRoot } from '../shared/runtime/project-root.js';

export function settingsTable(): string {
  const rows = Object.values(settings).map((s) => `| \`${s.name}\` | ${s.default === undefined ? '(unset)' : `\`${s.default}\``} | ${s.description} |`);
  return ['| Variable | Default | Meaning |', '| --- | --- | --- |', ...rows].join('\n');
}

const readme = path.join(projectRoot(), 'README.md');
const text = readFileSync(readme, 'utf8');
const start = '<!-- settings:start -->';
const end = '<!-- settings:end -->';
const a = text.indexOf(start);
const b = text.indexOf(end);
if (a < 0 || b < a) throw new Error('README.md lacks the settings markers');
writeFileSync(readme, `${text.slice(0, a + start.length)}\n${settingsTable()}\n${text.slice(b)}`);
process.stdout.write('README.md settings table updated\n');
