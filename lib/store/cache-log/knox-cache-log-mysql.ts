import type { QueryRunner } from 'typeorm';
import type { KnoxCacheLogReader } from './knox-cache-log-types.js';

/**
 * MySQL / MariaDB: the invalidation log and its triggers, and its reader. MySQL has no
 * statement-level triggers (one row per deleted token), no TRUNCATE trigger, and its foreign-key
 * cascades fire no trigger: a user deleted in SQL is logged by the user table's own trigger,
 * which drops all that user's tokens.
 */

const LOG = '`knox_cache_log`';
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

const q = (name: string) => `\`${name.replace(/`/g, '``')}\``;

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
    throw new Error(
      `knox cache log: bad table name ${tokenTable} (MySQL: an unqualified name).`,
    );
  }
}

async function userTableOf(
  queryRunner: QueryRunner,
  tokenTable: string,
): Promise<{ table: string; column: string }> {
  const rows = (await queryRunner.query(
    `SELECT REFERENCED_TABLE_NAME AS \`table\`, REFERENCED_COLUMN_NAME AS \`column\`
       FROM information_schema.KEY_COLUMN_USAGE
      WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = 'user_id'
        AND REFERENCED_TABLE_NAME IS NOT NULL`,
    [tokenTable],
  )) as { table: string; column: string }[];
  if (rows.length !== 1) {
    throw new Error(
      `knox cache log: ${tokenTable}.user_id has no foreign key to a user table; create the token table first.`,
    );
  }
  return rows[0];
}

const append = (message: string) =>
  `INSERT INTO ${LOG} (message, created_at) VALUES (${message}, UTC_TIMESTAMP(3))`;

function statements(
  tokenTable: string,
  user: { table: string; column: string },
): string[] {
  const t = triggerNames(tokenTable);
  const table = q(tokenTable);
  const userId = `CONCAT('u:', OLD.${q(user.column)})`;
  return [
    `CREATE TABLE IF NOT EXISTS ${LOG} (
       id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
       message TEXT NOT NULL,
       created_at DATETIME(3) NOT NULL
     ) ENGINE=InnoDB`,
    ...Object.values(t).map((name) => `DROP TRIGGER IF EXISTS ${q(name)}`),
    `CREATE TRIGGER ${q(t.tokenDelete)} AFTER DELETE ON ${table} FOR EACH ROW
       ${append(`CONCAT('t:', OLD.digest)`)}`,
    `CREATE TRIGGER ${q(t.tokenUpdate)} AFTER UPDATE ON ${table} FOR EACH ROW
     BEGIN
       IF NOT (OLD.digest <=> NEW.digest) OR NOT (OLD.user_id <=> NEW.user_id)
          OR NOT (OLD.retired_at <=> NEW.retired_at) OR NOT (OLD.abilities <=> NEW.abilities)
          OR (NEW.expiry IS NOT NULL AND (OLD.expiry IS NULL OR NEW.expiry < OLD.expiry)) THEN
         ${append(`CONCAT('t:', OLD.digest)`)};
       END IF;
     END`,
    // Any UPDATE of the user row: MySQL fires row triggers for unchanged rows too, and comparing
    // every column would miss one added later (e.g. a new "banned" flag).
    `CREATE TRIGGER ${q(t.userUpdate)} AFTER UPDATE ON ${q(user.table)} FOR EACH ROW
       ${append(userId)}`,
    `CREATE TRIGGER ${q(t.userDelete)} AFTER DELETE ON ${q(user.table)} FOR EACH ROW
       ${append(userId)}`,
  ];
}

/**
 * MySQL / MariaDB: creates the log (if missing) and (re)creates its triggers, under a named
 * lock so that instances booting together do not collide (DDL is not transactional here).
 * With binary logging on, creating triggers needs `log_bin_trust_function_creators` or SUPER.
 */
export async function installKnoxCacheLogMysql(
  queryRunner: QueryRunner,
  tokenTable: string,
): Promise<void> {
  checkTable(tokenTable);
  const user = await userTableOf(queryRunner, tokenTable);
  await queryRunner.query(`SELECT GET_LOCK('knox_cache_triggers', 30)`);
  try {
    for (const sql of statements(tokenTable, user)) {
      await queryRunner.query(sql);
    }
  } finally {
    await queryRunner.query(`SELECT RELEASE_LOCK('knox_cache_triggers')`);
  }
}

/** MySQL / MariaDB: drops the triggers of `tokenTable` and the log table. */
export async function dropKnoxCacheLogMysql(
  queryRunner: QueryRunner,
  tokenTable: string,
): Promise<void> {
  checkTable(tokenTable);
  for (const name of Object.values(triggerNames(tokenTable))) {
    await queryRunner.query(`DROP TRIGGER IF EXISTS ${q(name)}`);
  }
  await queryRunner.query(`DROP TABLE IF EXISTS ${LOG}`);
}

/** MySQL / MariaDB: whether the log table and its four triggers exist. */
export async function hasKnoxCacheLogMysql(
  queryRunner: QueryRunner,
  tokenTable: string,
): Promise<boolean> {
  checkTable(tokenTable);
  const names = Object.values(triggerNames(tokenTable));
  const rows = (await queryRunner.query(
    `SELECT
       (SELECT COUNT(*) FROM information_schema.TABLES
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'knox_cache_log') AS log,
       (SELECT COUNT(*) FROM information_schema.TRIGGERS
         WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME IN (?, ?, ?, ?)) AS triggers`,
    names,
  )) as { log: number | string; triggers: number | string }[];
  return Number(rows[0]?.log) === 1 && Number(rows[0]?.triggers) === 4;
}

/** What the reader uses of a `mysql2` connection (its promise wrapper). */
interface MysqlConnection {
  query(sql: string, values?: unknown[]): Promise<[unknown, unknown]>;
  end(): Promise<void>;
  destroy?(): void;
}

/** The parts of TypeORM's mysql driver the reader uses. */
export interface MysqlDriverParts {
  mysql: {
    createConnection(options: object): {
      promise(): MysqlConnection;
      on(event: 'error', listener: () => void): unknown;
    };
  };
  options: object;
  createConnectionOptions(options: object, credentials: object): object;
}

/** An id not seen yet below the mark: a transaction still open, or one rolled back. */
const GAP_LIFETIME = 5 * 60_000;
const MAX_GAPS = 10_000;
/** At start, ids this far below the last one that are not visible may still commit. */
const START_WINDOW = 100n;

/**
 * MySQL / MariaDB. Auto-increment ids are taken at insert and become visible at commit, so a
 * transaction open for long commits rows below the mark: each id missing between rows read is
 * remembered (for {@link GAP_LIFETIME}) and asked for again by every read until it shows up. A
 * writer open longer than that is seen only through `maxAge`. Rows are pruned by age, never at or
 * above the lowest gap still remembered.
 */
export class KnoxMysqlCacheLogReader implements KnoxCacheLogReader {
  private connection: MysqlConnection | undefined;
  private mark = 0n;
  /** Missing ids and when they were first missed (ms). */
  private readonly gaps = new Map<bigint, number>();

  constructor(private readonly driver: MysqlDriverParts) {}

  async open(): Promise<void> {
    const options = {
      ...this.driver.createConnectionOptions(
        this.driver.options,
        this.driver.options,
      ),
    } as Record<string, unknown>;
    for (const key of ['connectionLimit', 'acquireTimeout', 'queueLimit']) {
      delete options[key];
    }
    const raw = this.driver.mysql.createConnection(options);
    raw.on('error', () => undefined);
    this.connection = raw.promise();
    const [rows] = (await this.connection.query(
      `SELECT id FROM ${LOG} WHERE id > (SELECT COALESCE(MAX(id), 0) FROM ${LOG}) - ? ORDER BY id`,
      [Number(START_WINDOW)],
    )) as [{ id: string | number }[], unknown];
    this.gaps.clear();
    const ids = rows.map((r) => BigInt(r.id));
    this.mark = ids.at(-1) ?? 0n;
    const visible = new Set(ids);
    const now = Date.now();
    const from = this.mark > START_WINDOW ? this.mark - START_WINDOW : 0n;
    for (let id = from + 1n; id < this.mark; id++) {
      if (!visible.has(id)) {
        this.gaps.set(id, now);
      }
    }
  }

  async read(): Promise<string[]> {
    const connection = this.connected();
    const now = Date.now();
    for (const [id, since] of this.gaps) {
      if (now - since > GAP_LIFETIME) {
        this.gaps.delete(id);
      }
    }
    const gaps = [...this.gaps.keys()].map(String);
    const [rows] = (await connection.query(
      `SELECT id, message FROM ${LOG} WHERE id > ?${gaps.length > 0 ? ' OR id IN (?)' : ''}`,
      gaps.length > 0 ? [this.mark.toString(), gaps] : [this.mark.toString()],
    )) as [{ id: string | number; message: string }[], unknown];
    const fresh: bigint[] = [];
    for (const row of rows) {
      const id = BigInt(row.id);
      if (id > this.mark) {
        fresh.push(id);
      } else {
        this.gaps.delete(id);
      }
    }
    this.advance(
      fresh.sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)),
      now,
    );
    return rows.map((row) => row.message);
  }

  /** Moves the mark over `ids` (sorted), remembering every id skipped on the way. */
  private advance(ids: bigint[], now: number): void {
    const most = BigInt(MAX_GAPS);
    for (const id of ids) {
      const from = id - this.mark > most ? id - most : this.mark + 1n;
      for (let gap = from; gap < id; gap++) {
        if (this.gaps.size >= MAX_GAPS) {
          this.gaps.delete(this.gaps.keys().next().value as bigint);
        }
        this.gaps.set(gap, now);
      }
      this.mark = id;
    }
  }

  async prune(retentionMs: number): Promise<number> {
    let below = this.mark + 1n;
    for (const gap of this.gaps.keys()) {
      if (gap < below) {
        below = gap;
      }
    }
    const [result] = (await this.connected().query(
      `DELETE FROM ${LOG} WHERE created_at < UTC_TIMESTAMP(3) - INTERVAL ? SECOND AND id < ?`,
      [retentionMs / 1000, below.toString()],
    )) as [{ affectedRows?: number }, unknown];
    return result.affectedRows ?? 0;
  }

  async close(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    if (connection) {
      await connection.end().catch(() => connection.destroy?.());
    }
  }

  private connected(): MysqlConnection {
    if (!this.connection) {
      throw new Error('the cache log reader is closed');
    }
    return this.connection;
  }
}
