/**
 * Lints each committed OpenAPI document with Redocly CLI (recommended rules, redocly.yaml) and
 * Spectral (spectral:oas + the OWASP API security ruleset, .spectral.yaml). Any error fails; a
 * warning fails unless its rule is one the ruleset file sets to `warn` on purpose (with a reason).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { OPENAPI_DIR } from '../../scripts/commands/openapi.js';
import { projectRoot } from '../../shared/runtime/project-root.js';

const run = promisify(execFile);
const root = projectRoot();
const bin = (name: string) => path.join(root, 'node_modules', '.bin', name);
const SPECS = ['registry', 'ingestion', 'storage', 'notification'];

/** Rules a ruleset file sets to `warn` on purpose (`rule: warn` or `severity: warn` under it). */
function acceptedWarnings(file: string): Set<string> {
  const out = new Set<string>();
  let current: string | undefined;
  for (const line of readFileSync(path.join(root, file), 'utf8').split('\n')) {
    const rule = /^\s{2}([\w:.-]+):\s*(\S*)\s*$/.exec(line);
    if (rule) {
      current = rule[1];
      if (rule[2] === 'warn') out.add(current!);
      continue;
    }
    if (current && /^\s{4}severity:\s*warn\s*$/.test(line)) out.add(current);
  }
  return out;
}

/** stdout of a linter that exits non-zero when it finds problems. */
async function output(cmd: string, args: string[]): Promise<string> {
  try {
    return (await run(cmd, args, { cwd: root, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, NO_COLOR: '1', REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' } })).stdout;
  } catch (err) {
    const stdout = (err as { stdout?: string }).stdout;
    if (stdout) return stdout;
    throw err;
  }
}

// Linting is CPU-heavy; on a busy machine it takes longer than the default per-file timeout.
t.setTimeout(15 * 60_000);

t.test('Redocly CLI (recommended) finds no error and no unaccepted warning', async (t) => {
  const accepted = acceptedWarnings('redocly.yaml');
  for (const name of SPECS) {
    const text = await output(bin('redocly'), ['lint', '--config', 'redocly.yaml', '--format', 'json', path.join(OPENAPI_DIR, `${name}.json`)]);
    type RedoclyProblem = { ruleId: string; severity: string; message: string; location?: { pointer?: string }[] };
    const report = JSON.parse(text.slice(text.indexOf('{'))) as { problems: RedoclyProblem[] };
    const errors = report.problems.filter((p) => p.severity === 'error');
    const warnings = report.problems.filter((p) => p.severity === 'warn' && !accepted.has(p.ruleId));
    const show = (p: (typeof report.problems)[number]) => `${p.ruleId} ${p.location?.[0]?.pointer ?? ''}: ${p.message}`;
    t.comment(`redocly ${name}: ${errors.length} errors, ${report.problems.filter((p) => p.severity === 'warn').length} warnings (${warnings.length} not accepted)`);
    t.same(errors.map(show), [], `${name}: no Redocly errors`);
    t.same(warnings.map(show), [], `${name}: no Redocly warnings outside redocly.yaml`);
  }
});

t.test('Spectral (spectral:oas + OWASP API security) finds no error and no unaccepted warning', async (t) => {
  const accepted = acceptedWarnings('.spectral.yaml');
  // One run over the four documents: Spectral's start-up (loading the rulesets) is most of its time.
  const files = SPECS.map((name) => path.join(OPENAPI_DIR, `${name}.json`));
  const text = await output(bin('spectral'), ['lint', '--ruleset', '.spectral.yaml', '--format', 'json', '--quiet', ...files]);
  const all = JSON.parse(text.trim() === '' ? '[]' : text.slice(text.indexOf('['))) as { code: string; severity: number; message: string; path: string[]; source: string }[];
  for (const name of SPECS) {
    const results = all.filter((r) => path.basename(r.source) === `${name}.json`);
    const show = (r: (typeof results)[number]) => `${r.code} ${r.path.join('.')}: ${r.message}`;
    t.comment(`spectral ${name}: ${results.filter((r) => r.severity === 0).length} errors, ${results.filter((r) => r.severity === 1).length} warnings`);
    t.same(results.filter((r) => r.severity === 0).map(show), [], `${name}: no Spectral errors`);
    t.same(results.filter((r) => r.severity === 1 && !accepted.has(r.code)).map(show), [], `${name}: no Spectral warnings outside .spectral.yaml`);
  }
});
