import type { QueryRunner } from 'typeorm';
import type { KnoxCacheLogReader } from './knox-cache-log-types.js';

/**
 * SQLite (better-sqlite3): the invalidation log, its triggers, and its reader. One writer at a
 * time means rows become visible in id order: a mark alone misses nothing (`AUTOINCREMENT`, so
 * an id is never reused once the log is pruned). Foreign-key cascades fire the token table's
 * DELETE trigger.
 */

const LOG = '"knox_cache_log"';
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const NOW = `strftime('%Y-%m-%d %H:%M:%f', 'now')`;

const q = (name: string) => `"${name.replace(/"/g, '""')}"`;

function triggerNames(tokenTable: string) {
  const base = `knox_cache_${tokenTable}`.slice(0, 50);
  return {
    tokenDelete: `${base}_log_tdel`,
    tokenUpdate: `${base}_log_tupd`,
    userUpdate: `${base}_log_upd`,
    userDelete: `${base}_log_del`,
  };
}

function checkTable(tokenTable: string): void {
  if (!IDENTIFIER.test(tokenTable)) {
    throw new Error(`knox cache log: bad table name ${tokenTable}.`);
  }
}

async function userTableOf(
  queryRunner: QueryRunner,
  tokenTable: string,
): Promise<{ table: string; column: string }> {
  const rows = (
    (await queryRunner.query(`PRAGMA foreign_key_list(${q(tokenTable)})`)) as {
      table: string;
      from: string;
      to: string | null;
    }[]
  ).filter((row) => row.from === 'user_id');
  if (rows.length !== 1) {
    throw new Error(
      `knox cache log: ${tokenTable}.user_id has no foreign key to a user table; create the token table first.`,
    );
  }
  return { table: rows[0].table, column: rows[0].to ?? 'id' };
}

const append = (message: string) =>
  `INSERT INTO ${LOG} (message) VALUES (${message});`;

function statements(
  tokenTable: string,
  user: { table: string; column: string },
): string[] {
  const t = triggerNames(tokenTable);
  const table = q(tokenTable);
  const userId = `'u:' || OLD.${q(user.column)}`;
  return [
    `CREATE TABLE IF NOT EXISTS ${LOG} (
       "id" INTEGER PRIMARY KEY AUTOINCREMENT,
       "message" TEXT NOT NULL,
       "created_at" TEXT NOT NULL DEFAULT (${NOW})
     )`,
    ...Object.values(t).map((name) => `DROP TRIGGER IF EXISTS ${q(name)}`),
    `CREATE TRIGGER ${q(t.tokenDelete)} AFTER DELETE ON ${table} FOR EACH ROW
     BEGIN ${append(`'t:' || OLD.digest`)} END`,
    `CREATE TRIGGER ${q(t.tokenUpdate)}
       AFTER UPDATE OF digest, user_id, expiry, retired_at, abilities ON ${table} FOR EACH ROW
       WHEN OLD.digest IS NOT NEW.digest OR OLD.user_id IS NOT NEW.user_id
         OR OLD.retired_at IS NOT NEW.retired_at OR OLD.abilities IS NOT NEW.abilities
         OR (NEW.expiry IS NOT NULL AND (OLD.expiry IS NULL OR NEW.expiry < OLD.expiry))
     BEGIN ${append(`'t:' || OLD.digest`)} END`,
    `CREATE TRIGGER ${q(t.userUpdate)} AFTER UPDATE ON ${q(user.table)} FOR EACH ROW
     BEGIN ${append(userId)} END`,
    `CREATE TRIGGER ${q(t.userDelete)} AFTER DELETE ON ${q(user.table)} FOR EACH ROW
     BEGIN ${append(userId)} END`,
  ];
}

/** SQLite: creates the log (if missing) and (re)creates its triggers (in the caller's transaction). */
export async function installKnoxCacheLogSqlite(
  queryRunner: QueryRunner,
  tokenTable: string,
): Promise<void> {
  checkTable(tokenTable);
  const user = await userTableOf(queryRunner, tokenTable);
  for (const sql of statements(tokenTable, user)) {
    await queryRunner.query(sql);
  }
}

/** SQLite: drops the triggers of `tokenTable` and the log table. */
export async function dropKnoxCacheLogSqlite(
  queryRunner: QueryRunner,
  tokenTable: string,
): Promise<void> {
  checkTable(tokenTable);
  for (const name of Object.values(triggerNames(tokenTable))) {
    await queryRunner.query(`DROP TRIGGER IF EXISTS ${q(name)}`);
  }
  await queryRunner.query(`DROP TABLE IF EXISTS ${LOG}`);
}

/** SQLite: whether the log table and its four triggers exist. */
export async function hasKnoxCacheLogSqlite(
  queryRunner: QueryRunner,
  tokenTable: string,
): Promise<boolean> {
  checkTable(tokenTable);
  const names = Object.values(triggerNames(tokenTable));
  const rows = (await queryRunner.query(
    `SELECT
       (SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'knox_cache_log') AS log,
       (SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name IN (?, ?, ?, ?)) AS triggers`,
    names,
  )) as { log: number; triggers: number }[];
  return rows[0]?.log === 1 && rows[0]?.triggers === 4;
}

/** What the reader uses of a better-sqlite3 `Database`. */
interface SqliteDatabase {
  prepare(sql: string): {
    all(...params: unknown[]): unknown[];
    get(...params: unknown[]): unknown;
    run(...params: unknown[]): { changes: number };
  };
  readonly inTransaction: boolean;
  close(): unknown;
}

/** The parts of TypeORM's better-sqlite3 driver the reader uses. */
export interface SqliteDriverParts {
  sqlite: new (file: string, options: object) => SqliteDatabase;
  options: { database: string };
  databaseConnection: SqliteDatabase;
}

/** Longest a read waits for a writer's lock (it blocks the event loop meanwhile). */
const BUSY_TIMEOUT = 20;

/**
 * SQLite. A file database is read on a second connection (a read on TypeORM's own connection
 * inside one of its transactions would see that transaction's rows before its commit); an
 * in-memory one, on TypeORM's connection, skipping a read while a transaction is open there. A
 * read that finds the database locked is skipped: the cache, not vouched for, is then bypassed.
 */
export class KnoxSqliteCacheLogReader implements KnoxCacheLogReader {
  private database: SqliteDatabase | undefined;
  private own = false;
  private mark = 0;

  constructor(private readonly driver: SqliteDriverParts) {}

  open(): Promise<void> {
    return run(() => {
      const file = this.driver.options.database;
      this.own = file !== ':memory:' && file !== '';
      this.database = this.own
        ? new this.driver.sqlite(file, {
            fileMustExist: true,
            timeout: BUSY_TIMEOUT,
          })
        : this.driver.databaseConnection;
      const row = this.connected()
        .prepare(`SELECT coalesce(max(id), 0) AS mark FROM ${LOG}`)
        .get() as { mark: number };
      this.mark = row.mark;
    });
  }

  read(): Promise<string[]> {
    return run(() => {
      const database = this.connected();
      if (!this.own && database.inTransaction) {
        throw new SkippedRead();
      }
      const rows = database
        .prepare(`SELECT id, message FROM ${LOG} WHERE id > ? ORDER BY id`)
        .all(this.mark) as { id: number; message: string }[];
      this.mark = rows.at(-1)?.id ?? this.mark;
      return rows.map((row) => row.message);
    });
  }

  prune(retentionMs: number): Promise<number> {
    return run(() => {
      const database = this.connected();
      if (!this.own && database.inTransaction) {
        return 0;
      }
      return database
        .prepare(
          `DELETE FROM ${LOG} WHERE created_at < strftime('%Y-%m-%d %H:%M:%f', 'now', ?)`,
        )
        .run(`-${Math.round(retentionMs / 1000)} seconds`).changes;
    });
  }

  close(): Promise<void> {
    const database = this.database;
    this.database = undefined;
    if (database && this.own) {
      database.close();
    }
    return Promise.resolve();
  }

  private connected(): SqliteDatabase {
    if (!this.database) {
      throw new Error('the cache log reader is closed');
    }
    return this.database;
  }
}

/** A read not made now (locked, or a transaction open on the shared connection). */
export class SkippedRead extends Error {
  constructor() {
    super('read skipped');
  }
}

/** A synchronous better-sqlite3 call as a promise; SQLITE_BUSY becomes a {@link SkippedRead}. */
function run<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (error) {
    const code = (error as { code?: string }).code;
    return Promise.reject(
      code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED'
        ? new SkippedRead()
        : error,
    );
  }
}
