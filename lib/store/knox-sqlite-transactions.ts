import { AsyncLocalStorage } from 'node:async_hooks';
import type { DataSource, EntityManager, QueryRunner } from 'typeorm';

/**
 * The library's transactions on TypeORM's `better-sqlite3` driver.
 *
 * That driver has ONE connection, and one query runner, per DataSource: `createQueryRunner()`
 * hands out the same runner every time. Two concurrent `dataSource.transaction()` calls do not
 * wait for each other: the second one sees the first one's transaction open and nests in it as
 * a SAVEPOINT, so one request's statements run inside another's transaction, commit with it or
 * roll back with it (and a raw `BEGIN` meets "cannot start a transaction within a transaction").
 * TypeORM puts no lock around the connection: any statement sent while a transaction is open on
 * it (the app's own, or the library's request path) runs inside that transaction.
 *
 * So on SQLite the library runs its own work one unit at a time per DataSource (a FIFO queue):
 * - a transaction ({@link knoxSqliteTransaction}) starts with `BEGIN IMMEDIATE`: it takes the
 *   database's write lock at its start, so two processes on one file serialise on it instead of
 *   failing with `SQLITE_BUSY` when a reader upgrades to a writer. While another connection
 *   holds the lock, the BEGIN is retried without blocking the event loop, up to the
 *   connection's busy timeout (`PRAGMA busy_timeout`: TypeORM passes the DataSource option
 *   `timeout`, default 5000 ms, to better-sqlite3); past it the driver's `SQLITE_BUSY` error is
 *   thrown, which the store maps to 503 like any driver error;
 * - a single statement ({@link knoxSqliteSerial}) waits in the same queue, so it never runs
 *   inside one of the library's open transactions;
 * - both first wait (asynchronously, up to the busy timeout) until no transaction of the app is
 *   open on the connection, so that they neither join it nor fail to BEGIN inside it.
 * Work queued from inside a unit of work (re-entrance) runs at once, inside it.
 */

/** The parts of a better-sqlite3 `Database` used here (type-only: the package stays optional). */
interface SqliteConnection {
  readonly inTransaction: boolean;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  prepare(sql: string): { run(): unknown };
}

/** TypeORM's query runner state that its own `startTransaction` keeps. */
interface RunnerState {
  isTransactionActive: boolean;
  transactionDepth: number;
}

/** The tail of each DataSource's queue. */
const queues = new WeakMap<DataSource, Promise<unknown>>();
/** The DataSource whose queue the current async context is running a unit of work of. */
const running = new AsyncLocalStorage<DataSource>();

/** Whether `dataSource` uses TypeORM's `better-sqlite3` driver. */
export function isBetterSqlite3(dataSource: DataSource): boolean {
  return dataSource.options.type === 'better-sqlite3';
}

/**
 * Runs `work` in a `BEGIN IMMEDIATE` transaction on the DataSource's one connection, after the
 * library's work queued before it and never at the same time as another unit of the library's
 * work on this DataSource. Commits when `work` resolves, rolls back when it throws.
 */
export function knoxSqliteTransaction<T>(
  dataSource: DataSource,
  work: (manager: EntityManager) => Promise<T>,
): Promise<T> {
  const runner = dataSource.createQueryRunner();
  const inQueue = running.getStore() === dataSource;
  if (inQueue && runner.isTransactionActive) {
    // Re-entrance from inside one of the library's transactions: run in it.
    return work(runner.manager);
  }
  const run = async () => {
    await begin(dataSource, runner);
    return finish(dataSource, runner, work);
  };
  return inQueue ? run() : serial(dataSource, run);
}

/**
 * Runs `work` (one or a few autocommit statements of the library) in the DataSource's queue,
 * so that it never runs inside the library's (or, if it can wait, the app's) open transaction.
 */
export function knoxSqliteSerial<T>(
  dataSource: DataSource,
  work: () => Promise<T>,
): Promise<T> {
  if (running.getStore() === dataSource) {
    return work();
  }
  return serial(dataSource, async () => {
    await untilIdle(dataSource, connectionOf(dataSource));
    return work();
  });
}

function serial<T>(dataSource: DataSource, work: () => Promise<T>): Promise<T> {
  const before = queues.get(dataSource) ?? Promise.resolve();
  const result = before.then(() => running.run(dataSource, work));
  // The next unit waits for this one to settle, not to succeed.
  const tail = result.then(
    () => undefined,
    () => undefined,
  );
  queues.set(dataSource, tail);
  void tail.then(() => {
    if (queues.get(dataSource) === tail) {
      queues.delete(dataSource);
    }
  });
  return result;
}

/** Commits or rolls back the transaction {@link begin} opened, around `work`. */
async function finish<T>(
  dataSource: DataSource,
  runner: QueryRunner,
  work: (manager: EntityManager) => Promise<T>,
): Promise<T> {
  const state = runner as unknown as RunnerState;
  try {
    const result = await work(runner.manager);
    // A transaction the app started meanwhile nests in this one (TypeORM's SAVEPOINT): let it
    // finish before the COMMIT ends the transaction under it.
    await until(dataSource, () => state.transactionDepth <= 1);
    await runner.query('COMMIT');
    return result;
  } catch (error) {
    try {
      if (connectionOf(dataSource).inTransaction) {
        await runner.query('ROLLBACK');
      }
    } catch {
      // The first error is the one to report.
    }
    throw error;
  } finally {
    state.isTransactionActive = false;
    state.transactionDepth = 0;
  }
}

/**
 * `BEGIN IMMEDIATE` on the DataSource's connection, retried while another connection holds the
 * write lock, up to the busy timeout; then marks TypeORM's runner as in a transaction, as its
 * own `startTransaction` does, so that TypeORM starts no transaction of its own inside.
 */
async function begin(
  dataSource: DataSource,
  runner: QueryRunner,
): Promise<void> {
  const db = connectionOf(dataSource);
  const timeout = busyTimeout(db);
  const deadline = Date.now() + timeout;
  await untilIdle(dataSource, db);
  for (let pause = 1; ; pause = Math.min(pause * 2, 20)) {
    try {
      beginNow(dataSource, db, timeout);
      break;
    } catch (error) {
      if (!isBusy(error) || Date.now() >= deadline) {
        throw error;
      }
    }
    await sleep(pause);
    await untilIdle(dataSource, db);
  }
  const state = runner as unknown as RunnerState;
  state.isTransactionActive = true;
  state.transactionDepth = 1;
}

/** One `BEGIN IMMEDIATE` attempt that does not wait for the lock (synchronous). */
function beginNow(
  dataSource: DataSource,
  db: SqliteConnection,
  timeout: number,
): void {
  dataSource.logger.logQuery('BEGIN IMMEDIATE');
  db.pragma('busy_timeout = 0');
  try {
    db.prepare('BEGIN IMMEDIATE').run();
  } finally {
    db.pragma(`busy_timeout = ${timeout}`);
  }
}

/** Waits until no transaction is open on the connection (the app's), up to the busy timeout. */
async function untilIdle(
  dataSource: DataSource,
  db: SqliteConnection,
): Promise<void> {
  await until(dataSource, () => !db.inTransaction);
}

/** Polls `done` (first at once) until it holds; throws a busy error after the busy timeout. */
async function until(
  dataSource: DataSource,
  done: () => boolean,
): Promise<void> {
  if (done()) {
    return;
  }
  const deadline = Date.now() + busyTimeout(connectionOf(dataSource));
  for (let pause = 1; !done(); pause = Math.min(pause * 2, 20)) {
    if (Date.now() >= deadline) {
      throw busyError();
    }
    await sleep(pause);
  }
}

/** The connection's busy timeout in ms (what the DataSource's `timeout` option set). */
function busyTimeout(db: SqliteConnection): number {
  return Number(db.pragma('busy_timeout', { simple: true })) || 0;
}

/** The better-sqlite3 `Database` of a DataSource on the `better-sqlite3` driver. */
function connectionOf(dataSource: DataSource): SqliteConnection {
  return (
    dataSource.driver as unknown as { databaseConnection: SqliteConnection }
  ).databaseConnection;
}

/** Whether a driver error says the database is locked (by another connection, or this one). */
export function isBusy(error: unknown): boolean {
  const e = error as { code?: unknown; driverError?: { code?: unknown } };
  const code = String(e?.driverError?.code ?? e?.code ?? '');
  return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED');
}

/** The error of a wait for the connection that outlasted the busy timeout. */
function busyError(): Error {
  return Object.assign(
    new Error(
      'SQLITE_BUSY: the connection stayed in a transaction past the busy timeout',
    ),
    { code: 'SQLITE_BUSY' },
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
