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

function errorMessage(error: unknown): string {
  const message = (error as Error | undefined)?.message ?? String(error);
  return typeof message === 'string' ? message : String(message);
}

function seconds(ms: number): string {
  return (Math.round(ms / 100) / 10).toString();
}
