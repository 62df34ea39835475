import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Test } from 'tap';
import { connectDb, type Db } from '../../shared/db/connect.js';

export interface TestDatabase {
  url: string;
  db: Db;
}

const adminUrl = (): string => {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is not set: run the tests with `npm test`');
  return url;
};

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: adminUrl() });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * A fresh database cloned from the migrated template, dropped when the test ends. Cloning takes
 * milliseconds, so every test file (or test) gets its own schema state.
 */
export async function testDatabase(t: Test): Promise<TestDatabase> {
  const name = `pb_${randomBytes(6).toString('hex')}`;
  const template = process.env.TEST_TEMPLATE_DB ?? 'postbud_test_template';
  // CREATE DATABASE ... TEMPLATE fails while another session is connected to the template.
  for (let attempt = 0; ; attempt++) {
    try {
      await admin((c) => c.query(`create database ${name} template ${template}`));
      break;
    } catch (err) {
      if (attempt > 50 || !String(err).includes('being accessed')) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  const db = connectDb(url.toString(), { poolSize: 5 });
  t.teardown(async () => {
    await db.close();
    await admin((c) => c.query(`drop database if exists ${name} with (force)`));
  });
  return { url: url.toString(), db };
}
