import type { EntityManager } from 'typeorm';
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

/** mysql2's codes of a foreign key violation on insert (the parent row is gone). */
const FOREIGN_KEY_CODES = new Set([
  'ER_NO_REFERENCED_ROW_2',
  'ER_NO_REFERENCED_ROW',
]);

/** mysql2's answer to a statement that is not a SELECT. */
interface ResultHeader {
  /** Rows matched (mysql2 connects with FOUND_ROWS), not only those changed. */
  affectedRows: number;
}

/**
 * The library's statements on MySQL 8 / MariaDB 10.6+ (mysql2): `?` placeholders and
 * `IN (?, …)`. Without `RETURNING` (MySQL 8 has none), the rows a delete or a rename returns are
 * read inside the same transaction, under the user's row lock and with `FOR UPDATE` on the rows,
 * then written. The user's lock is `SELECT … FOR UPDATE` on the user's row (never `GET_LOCK`,
 * which belongs to a pooled session, not to the transaction).
 */
export function knoxMysqlSql(tables: KnoxSqlTables): KnoxSql {
  const table = quote(tables.tokenTable);
  return {
    dialect: 'mysql',
    isDeadlock: (error) => driverCode(error) === 'ER_LOCK_DEADLOCK',
    isForeignKeyViolation: (error) =>
      FOREIGN_KEY_CODES.has(driverCode(error) as string),
    ...requestPath(table, tables),
    ...reads(table, tables),
    ...writes(table, tables),
  };
}

const select = (manager: EntityManager, sql: string, params: unknown[]) =>
  manager.query(sql, params) as Promise<KnoxRawRow[]>;
const write = async (manager: EntityManager, sql: string, params: unknown[]) =>
  ((await manager.query(sql, params)) as ResultHeader).affectedRows;
/** Reads the rows `where` matches (locking them), then deletes exactly those. */
const deleteWhere = async (
  manager: EntityManager,
  table: string,
  where: string,
  params: unknown[],
) => {
  const rows = await select(
    manager,
    `SELECT ${COLUMNS} FROM ${table} WHERE ${where} FOR UPDATE`,
    params,
  );
  if (rows.length > 0) {
    const digests = rows.map((row) => row.digest);
    await write(
      manager,
      `DELETE FROM ${table} WHERE digest IN (${placeholders(digests.length)})`,
      digests,
    );
  }
  return rows;
};

function requestPath(
  table: string,
  _tables: KnoxSqlTables,
): KnoxSqlRequestPath {
  return {
    async touch(manager, digests, change) {
      const { sets, params } = positionalTouchSets(change);
      const inList = `digest IN (${placeholders(digests.length)})`;
      await write(
        manager,
        `UPDATE ${table} SET ${sets.join(', ')} WHERE ${inList}`,
        [...params, ...digests],
      );
      const after = change.digest ? [...digests, change.digest] : digests;
      const rows = await select(
        manager,
        `SELECT expiry, retired_at, last_used_at, last_used_ip FROM ${table} WHERE digest IN (${placeholders(after.length)})`,
        after,
      );
      return rows[0];
    },
    deleteExpired: (manager, digest, now) =>
      write(manager, `DELETE FROM ${table} WHERE digest = ? AND expiry < ?`, [
        digest,
        now,
      ]),
    deleteExpiredBatch: (manager, now, batchSize) =>
      write(
        manager,
        `DELETE FROM ${table} WHERE expiry < ? ORDER BY expiry LIMIT ?`,
        [now, batchSize],
      ),
  };
}

function reads(table: string, tables: KnoxSqlTables): KnoxSqlReads {
  return {
    async lockUser(manager, userId) {
      const user = tables.userTable();
      await select(
        manager,
        `SELECT 1 FROM ${quote(user.path)} WHERE ${quote(user.primaryKey)} = ? FOR UPDATE`,
        [userId],
      );
    },
    ...positionalReads(table, select),
  };
}

function writes(table: string, _tables: KnoxSqlTables): KnoxSqlWrites {
  return {
    delete: (manager, digests, userId) =>
      deleteWhere(
        manager,
        table,
        `digest IN (${placeholders(digests.length)}) AND user_id = ?`,
        [...digests, userId],
      ),
    deleteAll: (manager, userId, except) =>
      except === undefined
        ? deleteWhere(manager, table, 'user_id = ?', [userId])
        : deleteWhere(manager, table, 'user_id = ? AND id <> ?', [
            userId,
            except,
          ]),
    retire: (manager, digest, expiry, at) =>
      write(
        manager,
        `UPDATE ${table} SET expiry = ?, retired_at = COALESCE(retired_at, ?) WHERE digest = ?`,
        [expiry, at, digest],
      ),
    async rename(manager, id, name, userId) {
      const matched = await write(
        manager,
        `UPDATE ${table} SET name = ? WHERE id = ? AND user_id = ?`,
        [name, id, userId],
      );
      if (matched === 0) {
        return undefined;
      }
      const rows = await select(
        manager,
        `SELECT ${COLUMNS} FROM ${table} WHERE id = ? AND user_id = ?`,
        [id, userId],
      );
      return rows[0];
    },
    extend: (manager, digest, expiry) =>
      write(
        manager,
        `UPDATE ${table} SET expiry = ? WHERE digest = ? AND retired_at IS NULL AND (max_expiry IS NULL OR max_expiry >= ?)`,
        [expiry, digest, expiry],
      ),
  };
}

/** Quotes a (possibly `schema.`-qualified) name with backticks. */
function quote(name: string): string {
  return name
    .split('.')
    .map((part) => `\`${part.replace(/`/g, '``')}\``)
    .join('.');
}
