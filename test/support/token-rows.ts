import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { TEST_DB, sql } from './test-db.js';

/** The timestamp columns of the token table. */
const DATE_COLUMNS = [
  'created',
  'expiry',
  'last_used_at',
  'retired_at',
  'max_expiry',
];

/**
 * UTC datetime text as SQLite holds it: TypeORM's (`YYYY-MM-DD HH:MM:SS.SSS`), or a DBA's plain
 * SQL without the milliseconds (`'2000-01-01 00:00:00'`), which compares the same way.
 */
const SQLITE_DATETIME = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,3})?$/;

/**
 * A raw row of the token table with its values as PostgreSQL's driver gives them, whatever the
 * database: timestamps as Dates (SQLite stores TypeORM's UTC text `YYYY-MM-DD HH:MM:SS.SSS`),
 * abilities as an array (MySQL/MariaDB and SQLite store JSON text). Any other text in those
 * columns throws: a value in another format is a bug the tests must see.
 */
export function tokenRow(raw: Record<string, any>): Record<string, any> {
  if (TEST_DB === 'postgres' || raw === undefined) {
    return raw;
  }
  const row = { ...raw };
  for (const column of DATE_COLUMNS) {
    const value = row[column];
    if (typeof value === 'string') {
      if (!SQLITE_DATETIME.test(value)) {
        throw new Error(`tokenRow: ${column} = ${value} is not a UTC datetime`);
      }
      row[column] = new Date(`${value.replace(' ', 'T')}Z`);
    }
  }
  if (typeof row.abilities === 'string') {
    const abilities: unknown = JSON.parse(row.abilities);
    if (
      !Array.isArray(abilities) ||
      abilities.some((ability) => typeof ability !== 'string')
    ) {
      throw new Error(`tokenRow: abilities = ${row.abilities} is no list`);
    }
    row.abilities = abilities;
  }
  return row;
}

/**
 * A Date as a raw statement's parameter: pg and mysql2 bind Dates (mysql2 in the data source's
 * `timezone`, UTC here); better-sqlite3 binds none, so SQLite gets TypeORM's UTC text, as the
 * library stores it. `null` stays `null`.
 */
export function dateParam(date: Date | null): Date | string | null {
  return TEST_DB === 'sqlite' && date !== null
    ? date.toISOString().replace('T', ' ').replace('Z', '')
    : date;
}

/**
 * The columns and values a raw INSERT of a token row adds for the public id: none on PostgreSQL,
 * where the column defaults to `gen_random_uuid()`; elsewhere it is a `varchar(36)` with no
 * default, which the library always sets (docs/database.md), so the test sets one as well.
 */
export function idColumn(): { column: string; values: string[] } {
  return TEST_DB === 'postgres'
    ? { column: '', values: [] }
    : { column: ', id', values: [randomUUID()] };
}

/**
 * Inserts one token row as another writer would (django-rest-knox, a DBA): the given columns
 * only, Dates bound as the database stores them, plus the public id off PostgreSQL
 * ({@link idColumn}). Returns the row's public id.
 */
export async function insertTokenRow(
  dataSource: DataSource,
  columns: Record<string, string | number | Date | null>,
): Promise<string> {
  const names = Object.keys(columns);
  const values = names.map((name) => {
    const value = columns[name];
    return value instanceof Date ? dateParam(value) : value;
  });
  const id = idColumn();
  const placeholders = [...values, ...id.values].map((_, i) => `$${i + 1}`);
  await dataSource.query(
    sql(
      `INSERT INTO knox_authtoken (${names.join(', ')}${id.column}) VALUES (${placeholders.join(', ')})`,
    ),
    [...values, ...id.values],
  );
  const [row] = await dataSource.query(
    sql(`SELECT id FROM knox_authtoken WHERE digest = $1`),
    [columns.digest],
  );
  return row.id as string;
}
