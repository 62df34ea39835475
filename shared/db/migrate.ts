import { readdir } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { Migrator, type Migration, type MigrationProvider, type MigrationResultSet } from 'kysely/migration';

// The migrator works on any schema: it never touches app tables through their types.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

/** migrations/ beside shared/, both in the source tree and in dist/. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

/**
 * Loads `NNNN_name.ts` (source, under the test runner) or `NNNN_name.js` (dist), never both, and
 * never declaration files.
 */
class FolderMigrationProvider implements MigrationProvider {
  constructor(private readonly dir: string) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const files = (await readdir(this.dir)).filter((f) => /^\d{4}_[\w-]+\.(ts|js)$/.test(f) && !f.endsWith('.d.ts'));
    const preferred = files.some((f) => f.endsWith('.js')) ? '.js' : '.ts';
    const out: Record<string, Migration> = {};
    for (const file of files.filter((f) => f.endsWith(preferred)).sort()) {
      out[file.slice(0, -3)] = (await import(pathToFileURL(path.join(this.dir, file)).href)) as Migration;
    }
    return out;
  }
}

export function migrator(db: AnyDb, dir = MIGRATIONS_DIR): Migrator {
  // Kysely's Postgres adapter takes an advisory lock around the run, so several processes
  // starting at once apply each migration exactly once.
  // Unordered: migrations written in parallel land with numbers below ones a database may already
  // have run (0014 after 0018); each is independent of the others' order, so run what is missing.
  return new Migrator({ db, provider: new FolderMigrationProvider(dir), allowUnorderedMigrations: true });
}

export async function migrateToLatest(db: AnyDb, dir?: string): Promise<string[]> {
  const result: MigrationResultSet = await migrator(db, dir).migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error');
    throw new Error(`migration ${failed?.migrationName ?? '?'} failed: ${String(result.error)}`, { cause: result.error });
  }
  return (result.results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Names of migrations present in code but not applied in the database. */
export async function pendingMigrations(db: AnyDb, dir?: string): Promise<string[]> {
  const all = await migrator(db, dir).getMigrations();
  return all.filter((m) => m.executedAt === undefined).map((m) => m.name);
}
