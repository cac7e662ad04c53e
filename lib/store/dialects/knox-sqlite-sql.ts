import type { EntityManager } from 'typeorm';
import { DateUtils } from 'typeorm/util/DateUtils.js';
import { IP_COLUMN_LENGTH } from '../../knox.constants.js';
import { COLUMNS } from '../knox-token-row.js';
import {
  driverCode,
  placeholders,
  type KnoxRawRow,
  type KnoxSql,
  type KnoxSqlReads,
  type KnoxSqlRequestPath,
  type KnoxSqlTables,
  type KnoxSqlWrites,
  type KnoxTouch,
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
      const { sets, params } = touchSets(change);
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
    async find(manager, digest, userId) {
      const found = await rows(
        manager,
        `SELECT ${COLUMNS} FROM ${table} WHERE digest = ? AND user_id = ?`,
        [digest, userId],
      );
      return found[0];
    },
    async findById(manager, id, userId) {
      const found = await rows(
        manager,
        `SELECT ${COLUMNS} FROM ${table} WHERE id = ? AND user_id = ?`,
        [id, userId],
      );
      return found[0];
    },
    live: (manager, userId, now) =>
      rows(
        manager,
        `SELECT ${COLUMNS} FROM ${table} WHERE user_id = ? AND (expiry IS NULL OR expiry >= ?) ORDER BY created ASC, id ASC`,
        [userId, now],
      ),
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

/** The SET clauses of the touch, as on PostgreSQL, with positional parameters. */
function touchSets(change: KnoxTouch): { sets: string[]; params: unknown[] } {
  const params: unknown[] = [change.lastUsedAt];
  // A retired row (in a rotation's grace period, retired since it was read) is read-only.
  const unlessRetired = (column: string) =>
    `"${column}" = CASE WHEN "retired_at" IS NULL THEN ? ELSE "${column}" END`;
  const sets = [unlessRetired('last_used_at')];
  if (change.lastUsedIp) {
    params.push(change.lastUsedIp.slice(0, IP_COLUMN_LENGTH));
    sets.push(unlessRetired('last_used_ip'));
  }
  if (change.expiry) {
    params.push(change.expiry, change.expiry, change.expiry);
    sets.push(
      '"expiry" = CASE WHEN "retired_at" IS NULL AND "expiry" < ? AND ("max_expiry" IS NULL OR "max_expiry" >= ?) THEN ? ELSE "expiry" END',
    );
  }
  if (change.digest) {
    params.push(change.digest);
    sets.push('"digest" = ?');
  }
  return { sets, params };
}

function quote(name: string): string {
  return name
    .split('.')
    .map((part) => `"${part.replace(/"/g, '""')}"`)
    .join('.');
}
