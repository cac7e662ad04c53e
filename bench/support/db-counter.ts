import { createRequire } from 'node:module';
import pg from 'pg';

const require = createRequire(import.meta.url);

/**
 * Counts, at the driver, every statement and every transaction the process sends to the
 * database (whatever sends it: TypeORM, a prepared statement, the driver directly): a statement
 * outside BEGIN/START TRANSACTION … COMMIT is a transaction of its own.
 *
 * - `queries`, `transactions`: on the apps' own connections (TypeORM's pool; on SQLite the
 *   DataSource's one connection, see {@link registerSqlite});
 * - `pollerQueries`: on the cache bus's own connections (the poll bus's reader: PostgreSQL
 *   application_name `knox-cache-poller`, a MySQL connection outside TypeORM's pool, an SQLite
 *   connection no DataSource owns). The PostgreSQL listener (`knox-cache-listener`) sends no
 *   work, only LISTEN and pings: not counted.
 *
 * Drivers: pg (`Client.prototype.query`), mysql2 (`Connection.prototype.query` / `execute`),
 * better-sqlite3 (the statement's `run` / `all` / `get`; TypeORM caches prepared statements, so
 * prepares are not executions). Also times statements matching `timed` (pruneExpired's batches).
 */
export class DbCounter {
  queries = 0;
  transactions = 0;
  pollerQueries = 0;
  timed: number[] = [];
  timedPattern: RegExp | null = null;
  private readonly inTransaction = new WeakMap<object, boolean>();
  private readonly sqliteApps = new WeakSet<object>();

  install(): void {
    this.installPg();
    this.tryInstall('mysql2', () => this.installMysql());
    this.tryInstall('better-sqlite3', () => this.installSqlite());
  }

  /** On SQLite: the DataSource's connection is an app's (every other one is a poller's). */
  registerSqlite(connection: object): void {
    this.sqliteApps.add(connection);
  }

  private tryInstall(name: string, install: () => void): void {
    try {
      install();
    } catch (error) {
      if ((error as { code?: string }).code !== 'MODULE_NOT_FOUND') {
        throw new Error(`db-counter: ${name}: ${String(error)}`, {
          cause: error,
        });
      }
    }
  }

  /** Counts one statement of `connection`; returns the driver's result, timed if asked. */
  private count<T>(
    connection: object,
    text: string,
    app: boolean,
    run: () => T,
  ): T {
    if (!app) {
      this.pollerQueries++;
      return run();
    }
    this.queries++;
    if (/^\s*(BEGIN|START TRANSACTION)\b/i.test(text)) {
      this.inTransaction.set(connection, true);
      this.transactions++;
    } else if (/^\s*(COMMIT|ROLLBACK)\b/i.test(text)) {
      this.inTransaction.set(connection, false);
    } else if (!this.inTransaction.get(connection)) {
      this.transactions++;
    }
    const result = run();
    if (this.timedPattern?.test(text) && result instanceof Promise) {
      const started = performance.now();
      void result.then(
        () => this.timed.push(performance.now() - started),
        () => undefined,
      );
    }
    return result;
  }

  private installPg(): void {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the patched query needs both
    const counter = this;
    const original = pg.Client.prototype.query as (
      ...args: unknown[]
    ) => unknown;
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      const config = args[0] as string | { text?: string } | undefined;
      const text = typeof config === 'string' ? config : (config?.text ?? '');
      const name = (
        this as unknown as {
          connectionParameters?: { application_name?: string };
        }
      ).connectionParameters?.application_name;
      const run = () => original.apply(this, args);
      if (name === 'knox-cache-listener') {
        return run();
      }
      return counter.count(this, text, name !== 'knox-cache-poller', run);
    } as typeof pg.Client.prototype.query;
  }

  private installMysql(): void {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the patched query needs both
    const counter = this;
    const { Connection } = require('mysql2') as {
      Connection: {
        prototype: Record<string, (...args: unknown[]) => unknown>;
      };
    };
    for (const method of ['query', 'execute']) {
      const original = Connection.prototype[method];
      Connection.prototype[method] = function (
        this: { _pool?: unknown },
        ...args: unknown[]
      ) {
        const sql = args[0] as string | { sql?: string } | undefined;
        const text = typeof sql === 'string' ? sql : (sql?.sql ?? '');
        // TypeORM's connections come from its pool; the poller's is a connection of its own.
        return counter.count(this, text, this._pool !== undefined, () =>
          original.apply(this, args),
        );
      };
    }
  }

  private installSqlite(): void {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the patched methods need both
    const counter = this;
    const Database = require('better-sqlite3') as new (file: string) => {
      prepare(sql: string): object;
      close(): void;
    };
    const probe = new Database(':memory:');
    const Statement = Object.getPrototypeOf(
      probe.prepare('SELECT 1'),
    ) as Record<string, (...args: unknown[]) => unknown>;
    probe.close();
    for (const method of ['run', 'all', 'get']) {
      const original = Statement[method];
      Statement[method] = function (
        this: { database: object; source: string },
        ...args: unknown[]
      ) {
        return counter.count(
          this.database,
          this.source,
          counter.sqliteApps.has(this.database),
          () => original.apply(this, args),
        );
      };
    }
  }
}
