import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { examplePerson, exampleSender, firstHourCommands } from '../../scripts/commands/first-hour.js';
import { categoryOf, seededSenders } from '../../scripts/commands/seed.js';
import { loadConfig } from '../../shared/config/config.js';
import { isValidPersonId, syntheticPersonIdList } from '../../shared/ids/person-id.js';
import { projectRoot } from '../../shared/runtime/project-root.js';

const readme = readFileSync(path.join(projectRoot(), 'README.md'), 'utf8');

t.test('the README first-letter block is the one npm start prints, for the default ports', async (t) => {
  const block = /<!-- first-hour:start -->\n```sh\n([\s\S]*?)\n```\n<!-- first-hour:end -->/.exec(readme)?.[1];
  t.ok(block, 'the README has the block');
  t.equal(block, firstHourCommands({ ingestionUrl: `http://localhost:${loadConfig({}).INGESTION_PORT}` }).join('\n'));
  t.match(block, /-F 'document=@docs\/examples\/brev\.pdf;type=application\/pdf'/, 'it sends a PDF that ships with the repository');
  t.equal(readFileSync(path.join(projectRoot(), 'docs', 'examples', 'brev.pdf')).subarray(0, 5).toString(), '%PDF-');
});

t.test('every token example in the README names a seeded sender and a seeded, valid person', async (t) => {
  const senders = new Set(seededSenders().map((s) => s.orgnr));
  const seededWithMailbox = new Set(syntheticPersonIdList(1000).filter((_, i) => categoryOf(i) === 'mailbox'));
  const orgs = [...readme.matchAll(/postbud token --org (\d+)/g)].map((m) => m[1]!);
  const pids = [...readme.matchAll(/postbud token --pid (\d+)/g)].map((m) => m[1]!);
  t.ok(orgs.length >= 2 && pids.length >= 2, 'the README shows both kinds of token');
  for (const org of orgs) t.ok(senders.has(org), `--org ${org} is a seeded sender`);
  for (const pid of pids) {
    t.ok(isValidPersonId(pid, { synthetic: true }), `--pid ${pid} is a valid (synthetic) personId`);
    t.ok(seededWithMailbox.has(pid), `--pid ${pid} is seeded, with a mailbox`);
  }
  t.equal(exampleSender().orgnr, orgs[0]);
  t.equal(examplePerson(), pids[0]);
});
