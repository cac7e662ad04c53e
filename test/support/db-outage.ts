/**
 * The run's database made unavailable for real, the same way in every test file:
 * - PostgreSQL, MariaDB: the app talks to the server through a {@link TcpProxy}; `cut()` destroys
 *   its connections and refuses new ones, `hold()` keeps what the app sends in flight;
 * - SQLite (no server, no proxy: a proxy URL never reaches `testConnectionOptions`): `cut()` is
 *   another connection holding the file's exclusive lock past a short busy timeout (as in
 *   test/e2e/databases/sqlite-outage.e2e-spec.ts), `hold()` keeps the app's statements waiting
 *   before they reach better-sqlite3 (its calls are synchronous: a lock would stall the process).
 */
import { createRequire } from 'node:module';
import type { DataSource, QueryRunner } from 'typeorm';
import { TcpProxy } from './tcp-proxy.js';
import type { TestAppOptions } from './test-app.js';
import { TEST_DB, testServerUrl } from './test-db.js';

interface SqliteConnection {
  exec(sql: string): void;
  close(): void;
}

/** What the app's connection waits for a lock on SQLite during `cut()`. */
const SQLITE_OUTAGE_BUSY_MS = 300;

export class DbOutage {
  private lock: SqliteConnection | undefined;
  private busyTimeout: number | undefined;
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;
  private unpatch: (() => void) | undefined;

  private constructor(readonly proxy: TcpProxy | undefined) {}

  /** A proxy in front of the run's server; nothing to start on SQLite. */
  static async start(): Promise<DbOutage> {
    const server = testServerUrl();
    return new DbOutage(server ? await TcpProxy.start(server) : undefined);
  }

  /**
   * The test app's options for this outage: the proxy's URL and a connect timeout that lets a
   * boot through a loaded machine (a cut refuses connections at once), in the driver's words.
   */
  appOptions(
    connectMs = 5000,
  ): Pick<TestAppOptions, 'databaseUrl' | 'dataSourceExtra'> {
    const server = testServerUrl();
    if (!this.proxy || !server) {
      return {};
    }
    return {
      databaseUrl: this.proxy.url(server),
      dataSourceExtra:
        TEST_DB === 'mariadb'
          ? { connectTimeout: connectMs }
          : { connectionTimeoutMillis: connectMs },
    };
  }

  /** The database goes away: the proxy cut, or the SQLite file locked by another connection. */
  async cut(dataSource: DataSource): Promise<void> {
    if (this.proxy) {
      await this.proxy.cut();
      return;
    }
    const [row] = (await dataSource.query('PRAGMA busy_timeout')) as {
      timeout: number;
    }[];
    this.busyTimeout = row?.timeout;
    await dataSource.query(`PRAGMA busy_timeout = ${SQLITE_OUTAGE_BUSY_MS}`);
    const Sqlite = createRequire(import.meta.url)('better-sqlite3') as new (
      file: string,
      options?: { timeout?: number },
    ) => SqliteConnection;
    const file = (dataSource.options as { database: string }).database;
    this.lock = new Sqlite(file, { timeout: 0 });
    this.lock.exec('BEGIN EXCLUSIVE');
    this.restoreSqlite = async () => {
      this.lock?.exec('ROLLBACK');
      this.lock?.close();
      this.lock = undefined;
      if (this.busyTimeout !== undefined) {
        await dataSource.query(`PRAGMA busy_timeout = ${this.busyTimeout}`);
      }
    };
  }

  /** The database is back (the proxy forwards again on its port, the lock released). */
  async restore(): Promise<void> {
    if (this.proxy) {
      await this.proxy.restore();
      return;
    }
    const restore = this.restoreSqlite;
    this.restoreSqlite = undefined;
    await restore?.();
  }

  /**
   * From now on the app's statements stay in flight (sent to the server that never gets them,
   * or, on SQLite, waiting before the driver) until {@link release}.
   */
  hold(dataSource: DataSource): void {
    if (this.proxy) {
      this.proxy.hold();
      return;
    }
    this.gate ??= new Promise<void>((resolve) => (this.openGate = resolve));
    if (this.unpatch) {
      return;
    }
    // better-sqlite3's driver has one query runner, the app's one connection: every statement
    // the app sends (repositories, query builders, the manager, DataSource.query) goes through
    // its query().
    const runner = dataSource.driver.createQueryRunner('master');
    const query = runner.query;
    const outage = this as DbOutage;
    runner.query = async function (this: QueryRunner, ...args: unknown[]) {
      if (outage.gate) {
        await outage.gate;
      }
      return (query as (...a: unknown[]) => Promise<unknown>).apply(this, args);
    } as QueryRunner['query'];
    this.unpatch = () => {
      runner.query = query;
    };
  }

  /** Lets what {@link hold} kept go on. */
  release(): void {
    if (this.proxy) {
      this.proxy.release();
      return;
    }
    this.openGate?.();
    this.gate = undefined;
    this.openGate = undefined;
  }

  /** Forwards, releases and stops: after the test file. */
  async close(): Promise<void> {
    this.release();
    this.unpatch?.();
    this.unpatch = undefined;
    if (this.proxy) {
      await this.proxy.restore().catch(() => undefined);
      await this.proxy.close();
      return;
    }
    await this.restore().catch(() => undefined);
  }

  private restoreSqlite: (() => Promise<void>) | undefined;
}
