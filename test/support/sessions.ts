import { createHash } from 'node:crypto';
import { login, type TestApp } from './test-app.js';
import { TEST_DB, rowDate, sql } from './test-db.js';

/** Re-exported: the time constants live in `time.ts`. */
export { T0, SECOND, MINUTE, HOUR, DAY } from './time.js';

/** `Authorization` header value for a token. */
export const bearer = (token: string): string => `Token ${token}`;

/** The digest knox stores: SHA-512 hex of the whole token. */
export const digestOf = (token: string): string =>
  createHash('sha512').update(token, 'utf8').digest('hex');

/** Logs in and returns the plaintext token with its row. */
export async function loginWithRow(
  t: TestApp,
  username: string,
  extra: Record<string, unknown> = {},
): Promise<{ token: string; row: Record<string, any> }> {
  const token = await login(t, username, undefined, extra);
  return { token, row: await rowOf(t, token) };
}

/** The token table's time columns. */
const TIME_COLUMNS = [
  'created',
  'expiry',
  'last_used_at',
  'retired_at',
  'max_expiry',
];

/**
 * The row of a plaintext token (found by its digest), its times as Dates on every database
 * (SQLite's raw rows hold TypeORM's UTC text).
 */
export async function rowOf(
  t: TestApp,
  token: string,
): Promise<Record<string, any>> {
  const rows = await t.dataSource.query(
    sql(`SELECT * FROM knox_authtoken WHERE digest = $1`),
    [digestOf(token)],
  );
  const row = rows[0];
  if (row && TEST_DB === 'sqlite') {
    for (const column of TIME_COLUMNS) {
      if (column in row) {
        row[column] = rowDate(row[column]);
      }
    }
  }
  return row;
}

/** The public ids of the rows left in the table, sorted. */
export async function rowIds(t: TestApp): Promise<string[]> {
  return (await t.tokenRows()).map((r) => r.id as string).sort();
}

/** The events of one name. */
export function eventsNamed(t: TestApp, name: string): any[] {
  return t.events.filter((e) => e.name === name).map((e) => e.payload);
}

/** Plain-JSON copy of the events, as a listener forwarding them would see them. */
export function eventsJson(t: TestApp): string {
  return JSON.stringify(t.events);
}
