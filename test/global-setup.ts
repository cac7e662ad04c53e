/**
 * Jest global setup: provides process.env.DATABASE_URL to every test file.
 * - DATABASE_URL set: only checks that it accepts connections (fails fast otherwise).
 * - Not set: starts the embedded PGlite server once per jest run; global-teardown stops it.
 *
 * Jest loads global setup/teardown as CommonJS through its require hook (supportsStaticESM is
 * false for global hooks) and applies no moduleNameMapper there, so the usual relative `.js`
 * import of a .ts file cannot resolve in this file: it require()s the extensionless path instead,
 * which the hook resolves to the .ts source. Packages (pg, pglite) load through their CJS builds.
 */
import pg from 'pg';
import type * as EmbeddedPostgresModule from '../example/src/embedded-postgres.js';

/** Where the embedded server's handle waits for global-teardown (same process). */
const HANDLE = Symbol.for('nestjs-knox.test.embeddedPostgres');

/** Enough for a few data sources and raw pools open at once in one test file. */
const EMBEDDED_MAX_CONNECTIONS = 32;

export default async function globalSetup(): Promise<void> {
  const db = process.env.KNOX_TEST_DB ?? 'postgres';
  if (db === 'mariadb') {
    await prepareMysql();
    return;
  }
  if (db === 'sqlite') {
    prepareSqlite();
    return;
  }
  const url = process.env.DATABASE_URL;
  if (url) {
    await checkConnects(url);
    console.log(`\n[test db] DATABASE_URL ${redact(url)}`);
    return;
  }
  const { startEmbeddedPostgres } =
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('../example/src/embedded-postgres') as typeof EmbeddedPostgresModule;
  const started = performance.now();
  const embedded = await startEmbeddedPostgres({
    maxConnections: EMBEDDED_MAX_CONNECTIONS,
  });
  (globalThis as Record<symbol, unknown>)[HANDLE] = embedded;
  process.env.DATABASE_URL = embedded.url;
  // Tests that need several concurrent PostgreSQL sessions (PGlite has one) read this.
  process.env.KNOX_TEST_EMBEDDED_DB = '1';
  const ms = Math.round(performance.now() - started);
  console.log(
    `\n[test db] embedded PGlite at ${embedded.url}, started in ${ms} ms (set DATABASE_URL to use a real server)`,
  );
}

async function checkConnects(url: string): Promise<void> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: 5000,
  });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (err) {
    const reason =
      err instanceof Error && err.message ? err.message : String(err);
    throw new Error(
      `DATABASE_URL=${redact(url)} does not accept connections: ${reason}. ` +
        'Start that server, fix the URL, or unset DATABASE_URL to use the embedded PGlite.',
      { cause: err },
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/**
 * KNOX_TEST_DB=mariadb: (re)creates the database of KNOX_TEST_MYSQL_URL, empty, so each run
 * starts from no table (the apps synchronize, the migration tests run the migrations).
 */
async function prepareMysql(): Promise<void> {
  const url =
    process.env.KNOX_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/knox_test';
  const parsed = new URL(url);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_]+$/.test(database)) {
    throw new Error(
      `KNOX_TEST_MYSQL_URL=${redact(url)}: name a database (letters, digits, _).`,
    );
  }
  parsed.pathname = '/';
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mysql = require('mysql2/promise') as typeof import('mysql2/promise');
  let connection: import('mysql2/promise').Connection | undefined;
  try {
    connection = await mysql.createConnection({
      uri: parsed.toString(),
      connectTimeout: 5000,
    });
    await connection.query(`DROP DATABASE IF EXISTS \`${database}\``);
    // Case-sensitive text, as on PostgreSQL (the test users 'alice' and 'Alice' are two users).
    await connection.query(
      `CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
    );
  } catch (err) {
    const reason =
      err instanceof Error && err.message ? err.message : String(err);
    throw new Error(
      `KNOX_TEST_MYSQL_URL=${redact(url)} does not accept connections: ${reason}. ` +
        'Start MariaDB (docs/contributing.md) or fix the URL.',
      { cause: err },
    );
  } finally {
    await connection?.end().catch(() => undefined);
  }
  console.log(`\n[test db] MariaDB/MySQL ${redact(url)} (emptied)`);
}

/** KNOX_TEST_DB=sqlite: better-sqlite3 on temp files (or KNOX_TEST_SQLITE_FILE, emptied). */
function prepareSqlite(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { tmpdir } = require('node:os') as typeof import('node:os');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { rmSync } = require('node:fs') as typeof import('node:fs');
  const file = process.env.KNOX_TEST_SQLITE_FILE;
  if (!file) {
    // test/support/test-db.ts makes a fresh file for each test file, and removes it after.
    console.log(
      `\n[test db] SQLite, a temp file per test file under ${tmpdir()}`,
    );
    return;
  }
  for (const suffix of ['', '-wal', '-shm', '-journal']) {
    rmSync(`${file}${suffix}`, { force: true });
  }
  console.log(`\n[test db] SQLite ${file} (emptied; every test file uses it)`);
}
