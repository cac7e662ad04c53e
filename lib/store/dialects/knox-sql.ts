import type { EntityManager } from 'typeorm';
import type { KnoxDialect } from '../knox-dialect.js';

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
