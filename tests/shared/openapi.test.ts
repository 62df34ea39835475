import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { OPENAPI_DIR, openapiSpecs } from '../../scripts/commands/openapi.js';

t.test('the committed OpenAPI documents match what the code produces', async (t) => {
  const specs = await openapiSpecs();
  t.same(Object.keys(specs).sort(), ['ingestion', 'notification', 'registry', 'storage']);
  for (const [name, text] of Object.entries(specs)) {
    const committed = readFileSync(path.join(OPENAPI_DIR, `${name}.json`), 'utf8');
    t.equal(committed, text, `openapi/${name}.json is current (run npm run openapi)`);
    const doc = JSON.parse(text) as { openapi: string; paths: Record<string, unknown> };
    t.equal(doc.openapi, '3.1.0');
    t.ok(doc.paths['/health/ready'], `${name} documents its readiness check`);
  }
});
