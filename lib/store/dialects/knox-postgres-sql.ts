import type { EntityManager } from 'typeorm';
import { IP_COLUMN_LENGTH } from '../../knox.constants.js';
import { COLUMNS } from '../knox-token-row.js';
import {
  driverCode,
  type KnoxRawRow,
  type KnoxSql,
  type KnoxSqlReads,
  type KnoxSqlRequestPath,
  type KnoxSqlTables,
  type KnoxSqlWrites,
  type KnoxTouch,
} from './knox-sql.js';

/** PostgreSQL's SQLSTATE for a foreign key violation. */
const FOREIGN_KEY_VIOLATION = '23503';

/** The library's statements on PostgreSQL (unchanged from the PostgreSQL-only store). */
export function knoxPostgresSql(tables: KnoxSqlTables): KnoxSql {
  const table = quote(tables.tokenTable);
  return {
    dialect: 'postgres',
    isDeadlock: () => false,
    isForeignKeyViolation: (error) =>
      driverCode(error) === FOREIGN_KEY_VIOLATION,
    ...requestPath(table, tables),
    ...reads(table, tables),
    ...writes(table, tables),
  };
}

const query = <R>(manager: EntityManager, sql: string, params: unknown[]) =>
  manager.query(sql, params) as Promise<R>;
/** Runs a `… RETURNING` and gives the rows it returned. */
const returning = async (
  manager: EntityManager,
  sql: string,
  params: unknown[],
) => (await query<[KnoxRawRow[], number]>(manager, sql, params))[0];
const count = async (manager: EntityManager, sql: string, params: unknown[]) =>
  (await query<[unknown, number]>(manager, sql, params))[1];

function requestPath(
  table: string,
  _tables: KnoxSqlTables,
): KnoxSqlRequestPath {
  return {
    async touch(manager, digests, change) {
      const { sets, params } = touchSets(digests, change);
      const rows = await returning(
        manager,
        `UPDATE ${table} SET ${sets.join(', ')} WHERE "digest" = ANY($1) RETURNING expiry, retired_at, last_used_at, last_used_ip`,
        params,
      );
      return rows[0];
    },
    deleteExpired: (manager, digest, now) =>
      count(manager, `DELETE FROM ${table} WHERE digest = $1 AND expiry < $2`, [
        digest,
        now,
      ]),
    // The rows are found through the expiry index and deleted by their physical address (no
    // second lookup by digest), and rows another transaction holds are skipped.
    deleteExpiredBatch: (manager, now, batchSize) =>
      count(
        manager,
        `DELETE FROM ${table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${table} WHERE expiry < $1 ORDER BY expiry LIMIT $2 FOR UPDATE SKIP LOCKED)) AND expiry < $1`,
        [now, batchSize],
      ),
  };
}

function reads(table: string, tables: KnoxSqlTables): KnoxSqlReads {
  return {
    async lockUser(manager, userId) {
      await manager.query(
        'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))',
        [`knox:${tables.tokenTable}:${String(userId)}`],
      );
    },
    async find(manager, digest, userId) {
      const rows = await query<KnoxRawRow[]>(
        manager,
        `SELECT ${COLUMNS} FROM ${table} WHERE digest = $1 AND user_id = $2`,
        [digest, userId],
      );
      return rows[0];
    },
    async findById(manager, id, userId) {
      const rows = await query<KnoxRawRow[]>(
        manager,
        `SELECT ${COLUMNS} FROM ${table} WHERE id = $1 AND user_id = $2`,
        [id, userId],
      );
      return rows[0];
    },
    live: (manager, userId, now) =>
      query<KnoxRawRow[]>(
        manager,
        `SELECT ${COLUMNS} FROM ${table} WHERE user_id = $1 AND (expiry IS NULL OR expiry >= $2) ORDER BY created ASC, id ASC`,
        [userId, now],
      ),
  };
}

function writes(table: string, _tables: KnoxSqlTables): KnoxSqlWrites {
  return {
    delete: (manager, digests, userId) =>
      returning(
        manager,
        `DELETE FROM ${table} WHERE digest = ANY($1) AND user_id = $2 RETURNING ${COLUMNS}`,
        [digests, userId],
      ),
    deleteAll: (manager, userId, except) =>
      except === undefined
        ? returning(
            manager,
            `DELETE FROM ${table} WHERE user_id = $1 RETURNING ${COLUMNS}`,
            [userId],
          )
        : returning(
            manager,
            `DELETE FROM ${table} WHERE user_id = $1 AND id <> $2 RETURNING ${COLUMNS}`,
            [userId, except],
          ),
    retire: (manager, digest, expiry, at) =>
      count(
        manager,
        `UPDATE ${table} SET expiry = $1, retired_at = COALESCE(retired_at, $2) WHERE digest = $3`,
        [expiry, at, digest],
      ),
    async rename(manager, id, name, userId) {
      const rows = await returning(
        manager,
        `UPDATE ${table} SET name = $1 WHERE id = $2 AND user_id = $3 RETURNING ${COLUMNS}`,
        [name, id, userId],
      );
      return rows[0];
    },
    extend: (manager, digest, expiry) =>
      count(
        manager,
        `UPDATE ${table} SET expiry = $1 WHERE digest = $2 AND retired_at IS NULL AND (max_expiry IS NULL OR max_expiry >= $1)`,
        [expiry, digest],
      ),
  };
}

/**
 * The SET clauses of the touch: `lastUsedAt` (and its IP) unless the row is retired, a new
 * expiry unless it was retired meanwhile, the move from a legacy digest. `$1` is the digests.
 */
function touchSets(
  digests: string[],
  change: KnoxTouch,
): { sets: string[]; params: unknown[] } {
  const params: unknown[] = [digests, change.lastUsedAt];
  // A retired row (in a rotation's grace period, retired since it was read) is read-only.
  const unlessRetired = (column: string, param: number) =>
    `"${column}" = CASE WHEN "retired_at" IS NULL THEN $${param} ELSE "${column}" END`;
  const sets = [unlessRetired('last_used_at', 2)];
  if (change.lastUsedIp) {
    params.push(change.lastUsedIp.slice(0, IP_COLUMN_LENGTH));
    sets.push(unlessRetired('last_used_ip', params.length));
  }
  if (change.expiry) {
    params.push(change.expiry);
    sets.push(
      `"expiry" = CASE WHEN "retired_at" IS NULL AND "expiry" < $${params.length} AND ("max_expiry" IS NULL OR "max_expiry" >= $${params.length}) THEN $${params.length} ELSE "expiry" END`,
    );
  }
  if (change.digest) {
    params.push(change.digest);
    sets.push(`"digest" = $${params.length}`);
  }
  return { sets, params };
}

function quote(name: string): string {
  return name
    .split('.')
    .map((part) => `"${part.replace(/"/g, '""')}"`)
    .join('.');
}
