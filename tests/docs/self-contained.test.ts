import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { projectRoot } from '../../shared/runtime/project-root.js';

const root = projectRoot();
const tracked = (pattern: string): string[] =>
  execFileSync('git', ['ls-files', '--', pattern], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean);

t.test('a clone is self-contained: the docs name no file outside the repository', async (t) => {
  const docs = ['README.md', ...tracked('docs/*.md'), ...tracked('bench/*.md')];
  t.ok(existsSync(path.join(root, 'docs', 'design.md')), 'the design the code follows is kept in docs/');
  t.match(readFileSync(path.join(root, 'README.md'), 'utf8'), /\]\(docs\/design\.md\)/, 'the README links it');
  for (const file of docs) {
    const text = readFileSync(path.join(root, file), 'utf8');
    t.notMatch(text, /\.\.\/shared\/|shared\/DESIGN\.md|shared\/data\//, `${file} points to nothing outside the repository`);
    // Every relative Markdown link resolves to a file in the repository.
    for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      if (/^[a-z]+:/i.test(target!)) continue;
      const resolved = path.resolve(path.dirname(path.join(root, file)), target!);
      t.ok(resolved.startsWith(root + path.sep) && existsSync(resolved), `${file}: link ${target} resolves inside the repository`);
    }
  }
});
