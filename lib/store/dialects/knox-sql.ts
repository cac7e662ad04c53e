import type { EntityManager } from 'typeorm';
import { IP_COLUMN_LENGTH } from '../../knox.constants.js';
import type { KnoxDialect } from '../knox-dialect.js';
import { COLUMNS } from '../knox-token-row.js';

/** What the request path writes to a token it authenticated. */
export interface KnoxTouch {
  lastUsedAt: Date;
  /** The client IP of this use, written with `lastUsedAt`; `null` keeps the one stored. */
  lastUsedIp?: string | null;
  /**
   * A new expiry, written only if the row is not retired, it extends the expiry and it does not
   * pass the row's `max_expiry`.
   */
  expiry?: Date;
  /** Moves the row from a legacy digest to this (current) one. */
  digest?: string;
}

/** A raw row of the token table, as the statements read it (columns by database name). */
export type KnoxRawRow = Record<string, unknown>;

/** The tables a dialect's statements name. */
export interface KnoxSqlTables {
  /** The token table's path (`schema.table` or `table`), unquoted. */
  tokenTable: string;
  /** The user table's path and its primary key column, unquoted (MySQL's per-user row lock). */
  userTable: () => { path: string; primaryKey: string };
}

/**
 * Every statement the store sends, in one dialect. PostgreSQL's are the library's original ones
 * (advisory lock, `RETURNING`, `ANY($1)`, the `ctid` prune); MySQL/MariaDB and SQLite have their
 * own (`?` placeholders, `IN (?, …)`, no `RETURNING` on MySQL).
 */
export interface KnoxSql {
  readonly dialect: KnoxDialect;
  /** The request path's write; the row after it (expiry, retired_at, last_used_*), if any. */
  touch(
    manager: EntityManager,
    digests: string[],
    change: KnoxTouch,
  ): Promise<KnoxRawRow | undefined>;
  /** Deletes the token if it expired before `now`; how many rows it deleted. */
  deleteExpired(
    manager: EntityManager,
    digest: string,
    now: Date,
  ): Promise<number>;
  /** Deletes up to `batchSize` tokens expired before `now`, skipping locked rows where it can. */
  deleteExpiredBatch(
    manager: EntityManager,
    now: Date,
    batchSize: number,
  ): Promise<number>;
  /** Inside the transaction of `forUser`: takes the user's lock, held until it ends. */
  lockUser(manager: EntityManager, userId: unknown): Promise<void>;
  find(
    manager: EntityManager,
    digest: string,
    userId: unknown,
  ): Promise<KnoxRawRow | undefined>;
  findById(
    manager: EntityManager,
    id: string,
    userId: unknown,
  ): Promise<KnoxRawRow | undefined>;
  live(
    manager: EntityManager,
    userId: unknown,
    now: Date,
  ): Promise<KnoxRawRow[]>;
  /** Deletes the user's tokens stored under `digests`; the rows deleted. */
  delete(
    manager: EntityManager,
    digests: string[],
    userId: unknown,
  ): Promise<KnoxRawRow[]>;
  /** Deletes every token of the user but the one with id `except`; the rows deleted. */
  deleteAll(
    manager: EntityManager,
    userId: unknown,
    except?: string,
  ): Promise<KnoxRawRow[]>;
  /** How many rows it retired (0: gone). */
  retire(
    manager: EntityManager,
    digest: string,
    expiry: Date,
    at: Date,
  ): Promise<number>;
  rename(
    manager: EntityManager,
    id: string,
    name: string | null,
    userId: unknown,
  ): Promise<KnoxRawRow | undefined>;
  /** How many rows it extended. */
  extend(manager: EntityManager, digest: string, expiry: Date): Promise<number>;
  /** Whether a driver error is a foreign key violation (the user's row is gone). */
  isForeignKeyViolation(error: unknown): boolean;
  /** Whether a driver error is a deadlock that rolled the whole transaction back (MySQL). */
  isDeadlock(error: unknown): boolean;
}

/** The code of a driver error (as TypeORM wraps it), if any. */
export function driverCode(error: unknown): unknown {
  const e = error as { code?: unknown; driverError?: { code?: unknown } };
  return e?.driverError?.code ?? e?.code;
}

/** `?, ?, ?` for `n` values. */
export function placeholders(n: number): string {
  return Array.from({ length: n }, () => '?').join(', ');
}

/** The request path's statements and the prune. */
export type KnoxSqlRequestPath = Pick<
  KnoxSql,
  'touch' | 'deleteExpired' | 'deleteExpiredBatch'
>;
/** The reads inside `forUser`, and the user's lock. */
export type KnoxSqlReads = Pick<
  KnoxSql,
  'lockUser' | 'find' | 'findById' | 'live'
>;
/** The writes inside `forUser`. */
export type KnoxSqlWrites = Pick<
  KnoxSql,
  'delete' | 'deleteAll' | 'retire' | 'rename' | 'extend'
>;

/** A statement's rows, as a dialect reads them through its driver. */
export type KnoxSelect = (
  manager: EntityManager,
  sql: string,
  params: unknown[],
) => Promise<KnoxRawRow[]>;

/**
 * `find`, `findById` and `live` with `?` placeholders (MySQL/MariaDB and SQLite: the same
 * statements), read through the dialect's `select`.
 */
export function positionalReads(
  table: string,
  select: KnoxSelect,
): Pick<KnoxSql, 'find' | 'findById' | 'live'> {
  const first = async (
    sql: string,
    manager: EntityManager,
    params: unknown[],
  ) => (await select(manager, sql, params))[0];
  return {
    find: (manager, digest, userId) =>
      first(
        `SELECT ${COLUMNS} FROM ${table} WHERE digest = ? AND user_id = ?`,
        manager,
        [digest, userId],
      ),
    findById: (manager, id, userId) =>
      first(
        `SELECT ${COLUMNS} FROM ${table} WHERE id = ? AND user_id = ?`,
        manager,
        [id, userId],
      ),
    live: (manager, userId, now) =>
      select(
        manager,
        `SELECT ${COLUMNS} FROM ${table} WHERE user_id = ? AND (expiry IS NULL OR expiry >= ?) ORDER BY created ASC, id ASC`,
        [userId, now],
      ),
  };
}

/**
 * The request path's SET clauses with `?` placeholders, as on PostgreSQL (MySQL/MariaDB and
 * SQLite). MySQL assigns left to right: no clause reads a column an earlier one wrote (the
 * digest moves last).
 */
export function positionalTouchSets(change: KnoxTouch): {
  sets: string[];
  params: unknown[];
} {
  const params: unknown[] = [change.lastUsedAt];
  // A retired row (in a rotation's grace period, retired since it was read) is read-only.
  const unlessRetired = (column: string) =>
    `${column} = CASE WHEN retired_at IS NULL THEN ? ELSE ${column} END`;
  const sets = [unlessRetired('last_used_at')];
  if (change.lastUsedIp) {
    params.push(change.lastUsedIp.slice(0, IP_COLUMN_LENGTH));
    sets.push(unlessRetired('last_used_ip'));
  }
  if (change.expiry) {
    params.push(change.expiry, change.expiry, change.expiry);
    sets.push(
      'expiry = CASE WHEN retired_at IS NULL AND expiry < ? AND (max_expiry IS NULL OR max_expiry >= ?) THEN ? ELSE expiry END',
    );
  }
  if (change.digest) {
    params.push(change.digest);
    sets.push('digest = ?');
  }
  return { sets, params };
}
