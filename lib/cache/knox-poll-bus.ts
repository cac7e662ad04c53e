import type { Logger } from '@nestjs/common';
import type { KnoxCacheLogReader } from '../store/cache-log/knox-cache-log-reader.js';
import { SkippedRead } from '../store/cache-log/knox-cache-log-sqlite.js';
import {
  parseKnoxCacheMessage,
  type KnoxTokenCache,
} from './knox-token-cache.js';

/** Backoff of the reconnection attempts, in ms: doubled from the first to the last. */
const FIRST_RETRY = 50;
const LAST_RETRY = 5_000;
/** A read that takes longer than this is taken as the database being gone (reconnect). */
const READ_TIMEOUT_MIN = 1_000;
/** Rows older than this are pruned (every instance has read them long before). */
export const KNOX_CACHE_LOG_RETENTION = 5 * 60_000;
/** Each instance prunes about this often (jittered, so that instances spread out). */
const PRUNE_EVERY = 60_000;

/** Settings of {@link KnoxPollBus}. */
export interface KnoxPollBusSettings {
  /**
   * Milliseconds from the start of one read to the start of the next (at once when a read took
   * longer): a fixed rate, so that the next read has a whole interval to answer before the
   * cache, vouched for two intervals from the start of the last read, stops being served.
   */
  interval: number;
  /** Whether this instance prunes the log (every instance does, by default). */
  prune?: boolean;
}

/**
 * Invalidation by polling the log the triggers append to (the pattern of Rails' Solid Cable):
 * every `interval` ms one query for the rows appended since the last read, applied to the
 * cache. Fails safe: while a read fails or hangs (database down, table missing, connection cut)
 * the cache is suspended (every request goes to the database); when the reader is back, the
 * cache starts empty, since what was appended meanwhile is not known.
 */
export class KnoxPollBus {
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private retryIn = FIRST_RETRY;
  private open = false;
  private nextPruneAt = 0;
  /** Reads done (for tests and the benchmark). */
  reads = 0;
  /** Times the reader came up (1 after boot). */
  connects = 0;
  /** The last failure, while down (for operators and tests). */
  lastError: Error | undefined;

  constructor(
    private readonly reader: KnoxCacheLogReader,
    private readonly cache: KnoxTokenCache,
    private readonly logger: Logger,
    private readonly settings: KnoxPollBusSettings,
  ) {}

  /** Opens the reader (on failure, keeps retrying in the background: cache bypassed). */
  async start(): Promise<void> {
    await this.step();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.cache.suspend();
    this.open = false;
    await this.reader.close();
  }

  private get readTimeout(): number {
    return Math.max(READ_TIMEOUT_MIN, 20 * this.settings.interval);
  }

  /** One turn: open when closed, else read and apply; then schedule the next turn. */
  private async step(): Promise<void> {
    if (this.stopped) {
      return;
    }
    const began = performance.now();
    // Never back to back, though: a quarter interval at least between two reads.
    const next = () =>
      Math.max(
        this.settings.interval / 4,
        began + this.settings.interval - performance.now(),
      );
    try {
      await withTimeout(
        this.open ? this.read() : this.connect(),
        this.readTimeout,
      );
      if (this.stopped) {
        return;
      }
      this.schedule(next());
      await this.maybePrune();
    } catch (error) {
      if (error instanceof SkippedRead && this.open) {
        // Not vouched for meanwhile: past two intervals the cache is bypassed by itself.
        this.schedule(next());
        return;
      }
      await this.down(error as Error);
    }
  }

  private async connect(): Promise<void> {
    const started = performance.now();
    await this.reader.open();
    if (this.stopped) {
      return;
    }
    this.open = true;
    this.connects++;
    this.retryIn = FIRST_RETRY;
    this.lastError = undefined;
    this.nextPruneAt = Date.now() + PRUNE_EVERY * Math.random();
    // Appended before the starting point is unknown: start from an empty cache.
    this.vouch(started);
    this.cache.resume();
    if (this.connects > 1) {
      this.logger.log('Cache poller back; cache flushed and back in use.');
    }
  }

  private async read(): Promise<void> {
    const started = performance.now();
    const messages = await this.reader.read();
    this.reads++;
    for (const message of messages) {
      this.cache.apply(parseKnoxCacheMessage(message));
    }
    this.vouch(started);
  }

  /**
   * Everything committed before `started` (the read's snapshot came later) is applied: entries
   * may be served until `started` + two intervals, by when the next read should have answered.
   */
  private vouch(started: number): void {
    this.cache.freshUntil = started + 2 * this.settings.interval;
  }

  /** Prunes now and then; a failure there is logged, not a reason to stop the cache. */
  private async maybePrune(): Promise<void> {
    if (this.settings.prune === false || Date.now() < this.nextPruneAt) {
      return;
    }
    this.nextPruneAt = Date.now() + PRUNE_EVERY * (0.5 + Math.random());
    try {
      await this.reader.prune(KNOX_CACHE_LOG_RETENTION);
    } catch (error) {
      this.logger.warn(
        `Cache log prune failed: ${(error as Error).message}; retried later.`,
      );
    }
  }

  private schedule(delay: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.step(), delay);
    this.timer.unref();
  }

  private async down(error: Error): Promise<void> {
    const wasUp = this.cache.available;
    this.cache.suspend();
    this.open = false;
    this.lastError = error;
    await this.reader.close();
    if (this.stopped) {
      return;
    }
    if (wasUp || this.connects === 0) {
      this.logger.warn(
        `Cache poller down (${error.message}); every request goes to the database until it reads the log again (retry in ${this.retryIn} ms).`,
      );
    }
    this.schedule(this.retryIn);
    this.retryIn = Math.min(this.retryIn * 2, LAST_RETRY);
  }
}

/** `work`, or a rejection once `ms` have passed without an answer. */
function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Prunes the log where no instance polls it (the `'postgres'` bus, when the log's migration
 * ran): the triggers append to it all the same. Opens the reader's connection once a prune
 * interval (jittered), prunes, closes it.
 */
export class KnoxCacheLogPruner {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly reader: KnoxCacheLogReader,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) {
      return;
    }
    this.timer = setTimeout(
      () => void this.run(),
      PRUNE_EVERY * (0.5 + Math.random()),
    );
    this.timer.unref();
  }

  private async run(): Promise<void> {
    try {
      await this.reader.open();
      await this.reader.prune(KNOX_CACHE_LOG_RETENTION);
    } catch (error) {
      this.logger.warn(
        `Cache log prune failed: ${(error as Error).message}; retried later.`,
      );
    } finally {
      await this.reader.close();
      this.schedule();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.reader.close();
  }
}
