import type { EntityManager } from 'typeorm';
import { DateUtils } from 'typeorm/util/DateUtils.js';
import { COLUMNS } from '../knox-token-row.js';
import {
  driverCode,
  placeholders,
  positionalReads,
  positionalTouchSets,
  type KnoxRawRow,
  type KnoxSql,
  type KnoxSqlReads,
  type KnoxSqlRequestPath,
  type KnoxSqlTables,
  type KnoxSqlWrites,
} from './knox-sql.js';

/**
 * A parameter as better-sqlite3 binds it: a `Date` as TypeORM's own datetime text (UTC,
 * `YYYY-MM-DD HH:MM:SS.SSS`), which sorts and compares as the time does.
 */
function param(value: unknown): unknown {
  return value instanceof Date
    ? DateUtils.mixedDateToUtcDatetimeString(value)
    : value;
}

/**
 * The library's statements on SQLite ≥ 3.35 (better-sqlite3): `?` placeholders, `IN (?, …)`,
 * `RETURNING` (which also counts the rows a write matched). The transactions that serialise
 * writers (`BEGIN IMMEDIATE`, one at a time on the connection) are the store's: {@link lockUser}
 * takes nothing more.
 */
export function knoxSqliteSql(tables: KnoxSqlTables): KnoxSql {
  const table = quote(tables.tokenTable);
  return {
    dialect: 'sqlite',
    isDeadlock: () => false,
    isForeignKeyViolation: (error) =>
      /^SQLITE_CONSTRAINT_FOREIGNKEY$/.test(String(driverCode(error))),
    ...requestPath(table, tables),
    ...reads(table, tables),
    ...writes(table, tables),
  };
}

const rows = (manager: EntityManager, sql: string, params: unknown[]) =>
  manager.query(sql, params.map(param)) as Promise<KnoxRawRow[]>;
const count = async (manager: EntityManager, sql: string, params: unknown[]) =>
  (await rows(manager, `${sql} RETURNING digest`, params)).length;

function requestPath(
  table: string,
  _tables: KnoxSqlTables,
): KnoxSqlRequestPath {
  return {
    async touch(manager, digests, change) {
      const { sets, params } = positionalTouchSets(change);
      const found = await rows(
        manager,
        `UPDATE ${table} SET ${sets.join(', ')} WHERE digest IN (${placeholders(digests.length)}) RETURNING expiry, retired_at, last_used_at, last_used_ip`,
        [...params, ...digests],
      );
      return found[0];
    },
    deleteExpired: (manager, digest, now) =>
      count(manager, `DELETE FROM ${table} WHERE digest = ? AND expiry < ?`, [
        digest,
        now,
      ]),
    deleteExpiredBatch: (manager, now, batchSize) =>
      count(
        manager,
        `DELETE FROM ${table} WHERE rowid IN (SELECT rowid FROM ${table} WHERE expiry < ? ORDER BY expiry LIMIT ?)`,
        [now, batchSize],
      ),
  };
}

function reads(table: string, _tables: KnoxSqlTables): KnoxSqlReads {
  return {
    lockUser: () => Promise.resolve(),
    ...positionalReads(table, rows),
  };
}

function writes(table: string, _tables: KnoxSqlTables): KnoxSqlWrites {
  return {
    delete: (manager, digests, userId) =>
      rows(
        manager,
        `DELETE FROM ${table} WHERE digest IN (${placeholders(digests.length)}) AND user_id = ? RETURNING ${COLUMNS}`,
        [...digests, userId],
      ),
    deleteAll: (manager, userId, except) =>
      except === undefined
        ? rows(
            manager,
            `DELETE FROM ${table} WHERE user_id = ? RETURNING ${COLUMNS}`,
            [userId],
          )
        : rows(
            manager,
            `DELETE FROM ${table} WHERE user_id = ? AND id <> ? RETURNING ${COLUMNS}`,
            [userId, except],
          ),
    retire: (manager, digest, expiry, at) =>
      count(
        manager,
        `UPDATE ${table} SET expiry = ?, retired_at = COALESCE(retired_at, ?) WHERE digest = ?`,
        [expiry, at, digest],
      ),
    async rename(manager, id, name, userId) {
      const found = await rows(
        manager,
        `UPDATE ${table} SET name = ? WHERE id = ? AND user_id = ? RETURNING ${COLUMNS}`,
        [name, id, userId],
      );
      return found[0];
    },
    extend: (manager, digest, expiry) =>
      count(
        manager,
        `UPDATE ${table} SET expiry = ? WHERE digest = ? AND retired_at IS NULL AND (max_expiry IS NULL OR max_expiry >= ?)`,
        [expiry, digest, expiry],
      ),
  };
}

function quote(name: string): string {
  return name
    .split('.')
    .map((part) => `"${part.replace(/"/g, '""')}"`)
    .join('.');
}
