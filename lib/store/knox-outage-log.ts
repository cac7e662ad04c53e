import { Logger } from '@nestjs/common';

/** Where {@link KnoxOutageLog} writes: a Nest `Logger` or anything with `error` and `log`. */
export interface KnoxOutageLogger {
  error(message: string): unknown;
  log(message: string): unknown;
}

/** Options of {@link KnoxOutageLog}. */
export interface KnoxOutageLogOptions {
  /**
   * Where the lines go.
   * @default new Logger('KnoxTokenService')
   */
  logger?: KnoxOutageLogger;
  /**
   * The least time, in ms, between two summaries while failures go on.
   * @default 10000
   */
  summaryInterval?: number;
  /**
   * The time in ms (for tests).
   * @default Date.now
   */
  now?: () => number;
}

/**
 * Logs database failures without flooding the log during an outage. The storage layer calls
 * {@link failure} on each failed statement and {@link success} on each one that worked:
 * - the first failure of an outage is logged at once, at ERROR, with its error;
 * - while failures go on, at most one summary (ERROR) per `summaryInterval`: how many failed
 *   since the last line, and the last error;
 * - the first success after failures logs one line (LOG) that the database is back: how long
 *   the outage lasted, how many failed in all, and those not reported yet.
 *
 * A database that flaps (fails again less than `summaryInterval` after it came back) stays
 * within two lines per interval: such an outage is reported by the summaries, and its "back"
 * line is written only if it wrote a line of its own; otherwise its failures are counted in the
 * next line. `success()` costs one comparison while the database is up.
 */
export class KnoxOutageLog {
  private readonly logger: KnoxOutageLogger;
  private readonly interval: number;
  private readonly now: () => number;
  private failing = false;
  private startedAt = 0;
  private failures = 0;
  /** Failures that no line has counted yet. */
  private unreported = 0;
  /** Whether the current outage wrote a line. */
  private reported = false;
  private lastError = '';
  private lastLineAt = Number.NEGATIVE_INFINITY;
  private backAt = Number.NEGATIVE_INFINITY;

  constructor(options: KnoxOutageLogOptions = {}) {
    this.logger = options.logger ?? new Logger('KnoxTokenService');
    this.interval = options.summaryInterval ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** Whether the last statement failed (an outage is going on). */
  get isFailing(): boolean {
    return this.failing;
  }

  /** Records a failed statement; logs it if it starts an outage, or a summary when one is due. */
  failure(error: unknown): void {
    const now = this.now();
    this.lastError = errorMessage(error);
    this.unreported++;
    if (!this.failing) {
      this.failing = true;
      this.startedAt = now;
      this.failures = 0;
      this.reported = false;
    }
    this.failures++;
    if (this.failures === 1 && now - this.backAt >= this.interval) {
      const earlier =
        this.unreported > 1
          ? `; ${this.unreported - 1} earlier failures not reported above`
          : '';
      this.write(
        'error',
        now,
        `Database error: ${this.lastError} (further failures are summarized at most every ${seconds(this.interval)} s until the database answers again${earlier})`,
      );
    } else if (now - this.lastLineAt >= this.interval) {
      this.write(
        'error',
        now,
        `Database still failing: ${this.unreported} failed in the last ${seconds(now - this.lastLineAt)} s (${this.failures} since ${new Date(this.startedAt).toISOString()}); last error: ${this.lastError}`,
      );
    }
  }

  /** Records a statement that worked; logs that the database is back after failures. */
  success(): void {
    if (!this.failing) {
      return;
    }
    const now = this.now();
    this.failing = false;
    if (!this.reported) {
      return;
    }
    const pending =
      this.unreported > 0 ? ` (${this.unreported} not reported above)` : '';
    this.write(
      'log',
      now,
      `Database is back after ${seconds(now - this.startedAt)} s: ${this.failures} failed${pending}; last error: ${this.lastError}`,
    );
    this.backAt = now;
  }

  private write(level: 'error' | 'log', now: number, message: string): void {
    this.logger[level](message);
    this.lastLineAt = now;
    this.unreported = 0;
    this.reported = true;
  }
}

/** Node's and the drivers' codes of a connection that failed, dropped or timed out. */
const CONNECTION_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST',
  // mysql2: a query timed out on the client (TypeORM's `enableQueryTimeout`).
  'PROTOCOL_SEQUENCE_TIMEOUT',
  // MySQL/MariaDB: too many connections, the server going down, a connection or statement
  // killed or timed out on the server, the network failing under a statement, no resources.
  'ER_CON_COUNT_ERROR',
  'ER_TOO_MANY_USER_CONNECTIONS',
  'ER_SERVER_SHUTDOWN',
  'ER_NORMAL_SHUTDOWN',
  'ER_SHUTDOWN_COMPLETE',
  'ER_SERVER_OFFLINE_MODE',
  'ER_CONNECTION_KILLED',
  'ER_QUERY_INTERRUPTED',
  'ER_STATEMENT_TIMEOUT',
  'ER_QUERY_TIMEOUT',
  'ER_CLIENT_INTERACTION_TIMEOUT',
  'ER_NET_READ_ERROR',
  'ER_NET_READ_INTERRUPTED',
  'ER_NET_ERROR_ON_WRITE',
  'ER_NET_WRITE_INTERRUPTED',
  'ER_OUT_OF_RESOURCES',
  'ER_CANT_CREATE_THREAD',
  'ER_HOST_IS_BLOCKED',
]);

/**
 * better-sqlite3's codes of a database file that is locked past the busy timeout, cannot be
 * opened or read, or is full (extended codes too: `SQLITE_BUSY_SNAPSHOT`, `SQLITE_IOERR_READ`).
 */
const SQLITE_OUTAGE_CODES =
  /^SQLITE_(BUSY|LOCKED|CANTOPEN|IOERR|FULL|PROTOCOL|READONLY)(_|$)/;

/**
 * pg's, pg-pool's and mysql2's messages for a connection lost or never made (they carry no
 * code): mysql2 answers "Can't add new command when connection is in closed state" on a
 * connection that died under it.
 */
const CONNECTION_MESSAGES =
  /connection terminated|timeout exceeded when trying to connect|server closed the connection|the database system is (starting up|shutting down|in recovery mode)|can't add new command when connection is in closed state|can't write in closed state/i;

/** SQLSTATE classes 08 (connection exception), 53 (insufficient resources), 57 (operator). */
const OUTAGE_SQLSTATE = /^(08|53|57)[0-9A-Z]{3}$/;

/**
 * Whether `error` is the database being unreachable (an outage), as opposed to a bug: a
 * connection error code (`ECONNRESET`, `ECONNREFUSED`, mysql2's `PROTOCOL_CONNECTION_LOST`,
 * MySQL's `ER_CON_COUNT_ERROR`, …), a SQLSTATE of class 08 (connection exception), 53
 * (insufficient resources, e.g. too many connections) or 57 (operator intervention: shutdown,
 * statement timeout) — pg's `code`, mysql2's `sqlState` — or the drivers' messages for a lost
 * connection, on the error itself or what it wraps (TypeORM's `driverError`, `cause`). A syntax
 * error, a missing table or a `TypeError` in the app's code is not an outage.
 */
export function isDatabaseOutage(error: unknown): boolean {
  let current = error as
    | {
        code?: unknown;
        sqlState?: unknown;
        message?: unknown;
        driverError?: unknown;
        cause?: unknown;
      }
    | undefined;
  for (let depth = 0; current && depth < 4; depth++) {
    const code = current.code;
    if (
      typeof code === 'string' &&
      (CONNECTION_CODES.has(code) ||
        OUTAGE_SQLSTATE.test(code) ||
        SQLITE_OUTAGE_CODES.test(code))
    ) {
      return true;
    }
    if (
      typeof current.sqlState === 'string' &&
      OUTAGE_SQLSTATE.test(current.sqlState)
    ) {
      return true;
    }
    if (
      typeof current.message === 'string' &&
      CONNECTION_MESSAGES.test(current.message)
    ) {
      return true;
    }
    current = (current.driverError ?? current.cause) as typeof current;
  }
  return false;
}

function errorMessage(error: unknown): string {
  const message = (error as Error | undefined)?.message ?? String(error);
  return typeof message === 'string' ? message : String(message);
}

function seconds(ms: number): string {
  return (Math.round(ms / 100) / 10).toString();
}
