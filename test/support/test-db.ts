/**
 * The database the e2e suite runs on: `KNOX_TEST_DB` = `postgres` (default: `DATABASE_URL`, or
 * the embedded PGlite global-setup starts), `mariadb` (`KNOX_TEST_MYSQL_URL`, default
 * `mysql://root@127.0.0.1:3306/knox_test`, a MariaDB 10.6+ or MySQL 8 server; global-setup
 * creates the database and empties it) or `sqlite` (better-sqlite3 on a temp file,
 * `KNOX_TEST_SQLITE_FILE`). One test file serves every database: its raw SQL goes through
 * {@link sql}, and what can only exist on one database is declared with {@link describeOn}.
 */
import { afterAll, describe } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSourceOptions } from 'typeorm';

export type KnoxTestDb = 'postgres' | 'mariadb' | 'sqlite';

const GIVEN = process.env.KNOX_TEST_DB ?? 'postgres';
if (!['postgres', 'mariadb', 'sqlite'].includes(GIVEN)) {
  throw new Error(
    `KNOX_TEST_DB=${GIVEN}: use postgres (the default), mariadb or sqlite.`,
  );
}

/** The database of this run. */
export const TEST_DB = GIVEN as KnoxTestDb;

/** The library's SQL dialect on this run's database. */
export const TEST_DIALECT: 'postgres' | 'mysql' | 'sqlite' =
  TEST_DB === 'mariadb' ? 'mysql' : TEST_DB;

export const TEST_MYSQL_URL =
  process.env.KNOX_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/knox_test';

/**
 * The SQLite file of this test file: a fresh temp file for each test file (jest loads this
 * module once per test file), shared by every app the test file boots, as instances of one app
 * share one file; removed, with its journal or WAL, after the test file. KNOX_TEST_SQLITE_FILE
 * names one file for every test file instead (kept).
 */
export function testSqliteFile(): string {
  if (process.env.KNOX_TEST_SQLITE_FILE) {
    return process.env.KNOX_TEST_SQLITE_FILE;
  }
  sqliteDir ??= mkdtempSync(join(tmpdir(), 'knox-test-sqlite-'));
  return join(sqliteDir, 'knox.sqlite');
}

let sqliteDir: string | undefined;
if (TEST_DB === 'sqlite') {
  afterAll(() => {
    if (sqliteDir) {
      rmSync(sqliteDir, { recursive: true, force: true });
      sqliteDir = undefined;
    }
  });
}

/**
 * TypeORM's connection options for this run's database. `url` replaces the default one (a TCP
 * proxy's, for outage tests). MySQL/MariaDB store UTC (`timezone: 'Z'`).
 */
export function testConnectionOptions(
  url?: string,
): Pick<DataSourceOptions, 'type'> & Record<string, unknown> {
  switch (TEST_DB) {
    case 'postgres':
      return {
        type: 'postgres',
        url:
          url ??
          process.env.DATABASE_URL ??
          'postgres://postgres@127.0.0.1:5432/test',
      };
    case 'mariadb':
      return { type: 'mariadb', url: url ?? TEST_MYSQL_URL, timezone: 'Z' };
    case 'sqlite':
      // TypeORM's defaults, as an app gets them: a busy timeout of 5000 ms, the rollback journal
      // (KNOX_TEST_SQLITE_WAL=1: WAL). `url` is a file here (another database for one test).
      return {
        type: 'better-sqlite3',
        database: url ?? testSqliteFile(),
        enableWAL: process.env.KNOX_TEST_SQLITE_WAL === '1',
      };
  }
}

/**
 * A test's raw SQL, written for PostgreSQL, in this run's dialect: `$1` → `?` and `"ident"` →
 * `` `ident` `` on MySQL/MariaDB; `$1` → `?` on SQLite. Parameters must then be given in order
 * of appearance, each `$n` once (the tests' statements are written so).
 */
export function sql(text: string): string {
  if (TEST_DIALECT === 'postgres') {
    return text;
  }
  const positional = text.replace(/\$\d+/g, '?');
  return TEST_DIALECT === 'mysql'
    ? positional.replace(/"([^"]+)"/g, '`$1`')
    : positional;
}

/** The statements that empty the test tables (identities restarted) on this database. */
export function emptyTablesSql(tables: string[]): string[] {
  switch (TEST_DB) {
    case 'postgres':
      return [`TRUNCATE ${tables.join(', ')} RESTART IDENTITY CASCADE`];
    case 'mariadb':
      return [
        ...tables.map((table) => `DELETE FROM ${table}`),
        ...tables.map((table) => `ALTER TABLE ${table} AUTO_INCREMENT = 1`),
      ];
    case 'sqlite':
      return tables.map((table) => `DELETE FROM ${table}`);
  }
}

/**
 * A describe that runs only on the listed databases, for tests of what exists only there
 * (PostgreSQL's LISTEN bus, pg_terminate_backend, PGlite, Django's recorded fixtures, named
 * prepared statements); elsewhere it is skipped, and its name says on which databases it runs.
 * Never for a guarantee every database must keep.
 */
export function describeOn(
  dbs: KnoxTestDb[],
  name: string,
  fn: () => void,
): void {
  const label = `${name} [${dbs.join(', ')} only]`;
  (dbs.includes(TEST_DB) ? describe : describe.skip)(label, fn);
}

/**
 * A date column of a raw row as a Date: PostgreSQL and MySQL/MariaDB drivers give Dates; SQLite
 * gives TypeORM's UTC text `YYYY-MM-DD HH:MM:SS.SSS`. `null` stays `null`.
 */
export function rowDate(value: unknown): Date | null {
  if (value === null || value === undefined) {
    return null;
  }
  if (value instanceof Date) {
    return value;
  }
  const text = String(value);
  const date = new Date(
    /^\d{4}-\d\d-\d\d \d/.test(text) ? `${text.replace(' ', 'T')}Z` : text,
  );
  if (Number.isNaN(date.getTime())) {
    throw new Error(`rowDate: ${text} is not a date`);
  }
  return date;
}

/**
 * The URL of this run's database server, for a TCP proxy in front of it (outage tests):
 * DATABASE_URL (or the embedded PGlite's) on PostgreSQL, KNOX_TEST_MYSQL_URL on MariaDB;
 * undefined on SQLite, which has no server (and where testConnectionOptions(url) takes a file).
 */
export function testServerUrl(): string | undefined {
  switch (TEST_DB) {
    case 'postgres':
      return (
        process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
      );
    case 'mariadb':
      return TEST_MYSQL_URL;
    case 'sqlite':
      return undefined;
  }
}
