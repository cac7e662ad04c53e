import type { Logger } from '@nestjs/common';
import type {
  KnoxPgClient,
  KnoxPgClientClass,
  KnoxPgClientConfig,
  KnoxPgNotification,
} from './knox-pg-client.js';
import {
  parseKnoxCacheMessage,
  type KnoxTokenCache,
} from './knox-token-cache.js';

/** Backoff of the reconnection attempts, in ms: doubled from the first to the last. */
const FIRST_RETRY = 50;
const LAST_RETRY = 5_000;
/** A listening connection that answers no ping within this long is taken as down. */
const PING_TIMEOUT = 5_000;

/**
 * Listens to the cache channel on ONE dedicated PostgreSQL connection (outside TypeORM's pool)
 * and applies what the triggers notify. While the connection is down (killed, database
 * restart, network) the cache is suspended: every request goes to the database. It reconnects
 * with backoff, and the cache comes back empty, since notifications sent meanwhile are lost.
 * A periodic ping finds a connection that died silently.
 */
export class KnoxPgListener {
  private client: KnoxPgClient | undefined;
  private stopped = false;
  private retryIn = FIRST_RETRY;
  private retryTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  /** The backend pid of the listening connection while up (for operators and tests). */
  pid: number | undefined;
  /** Times the connection came up (1 after boot). */
  connects = 0;

  constructor(
    private readonly ClientClass: KnoxPgClientClass,
    private readonly config: KnoxPgClientConfig,
    private readonly channel: string,
    private readonly cache: KnoxTokenCache,
    private readonly logger: Logger,
    private readonly pingInterval = 10_000,
  ) {}

  /** Connects and listens; on failure keeps retrying in the background (cache bypassed). */
  async start(): Promise<void> {
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    this.cache.suspend();
    const client = this.client;
    this.client = undefined;
    if (client) {
      await closeQuietly(client);
    }
  }

  /**
   * One connection attempt: a new client that listens to the channel; the cache resumes once
   * it does. Any failure, now or later, goes through `down` once (then a retry is scheduled).
   */
  private async connect(): Promise<void> {
    if (this.stopped) {
      return;
    }
    const client = new this.ClientClass({
      ...this.config,
      keepAlive: true,
      application_name: 'knox-cache-listener',
    });
    this.client = client;
    let failed = false;
    const down = (error?: Error) => {
      if (failed) {
        return;
      }
      failed = true;
      this.down(client, error);
    };
    this.watch(client, down);
    try {
      const pid = await this.listen(client);
      if (this.stopped) {
        await closeQuietly(client);
        return;
      }
      if (!failed) {
        this.up(client, pid, down);
      }
    } catch (error) {
      down(error as Error);
    }
  }

  /** Applies the channel's notifications; an error or the end of the connection is `down`. */
  private watch(client: KnoxPgClient, down: (error?: Error) => void): void {
    client.on('error', down);
    client.on('end', () => down());
    client.on('notification', (message: KnoxPgNotification) => {
      if (message.channel === this.channel) {
        this.cache.apply(parseKnoxCacheMessage(message.payload ?? ''));
      }
    });
  }

  /** Connects, listens, and gives the listening backend's pid. */
  private async listen(client: KnoxPgClient): Promise<number> {
    await client.connect();
    await client.query(`LISTEN "${this.channel}"`);
    const [{ pid }] = (
      await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
    ).rows;
    return pid;
  }

  /** The connection listens: the cache comes back (empty) and the pings start. */
  private up(
    client: KnoxPgClient,
    pid: number,
    down: (error?: Error) => void,
  ): void {
    this.pid = pid;
    this.connects++;
    this.retryIn = FIRST_RETRY;
    // Anything notified before LISTEN took effect is unknown: start from an empty cache.
    this.cache.resume();
    if (this.connects > 1) {
      this.logger.log(
        'Cache listener reconnected; cache flushed and back in use.',
      );
    }
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(
      () => this.ping(client, down),
      this.pingInterval,
    );
    this.pingTimer.unref();
  }

  private ping(client: KnoxPgClient, down: (error?: Error) => void): void {
    if (this.client !== client) {
      return;
    }
    const timer = setTimeout(
      () => down(new Error('no answer to a ping')),
      PING_TIMEOUT,
    );
    timer.unref();
    client.query('SELECT 1').then(
      () => clearTimeout(timer),
      (error: Error) => {
        clearTimeout(timer);
        down(error);
      },
    );
  }

  private down(client: KnoxPgClient, error?: Error): void {
    this.cache.suspend();
    clearInterval(this.pingTimer);
    this.pid = undefined;
    void closeQuietly(client);
    if (this.client === client) {
      this.client = undefined;
    }
    if (this.stopped) {
      return;
    }
    this.logger.warn(
      `Cache listener down (${error?.message ?? 'connection ended'}); every request goes to the database until it reconnects (retry in ${this.retryIn} ms).`,
    );
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.connect(), this.retryIn);
    this.retryTimer.unref();
    this.retryIn = Math.min(this.retryIn * 2, LAST_RETRY);
  }
}

/** Ends a client that is no longer wanted: its events and errors are ignored from now on. */
async function closeQuietly(client: KnoxPgClient): Promise<void> {
  client.removeAllListeners();
  client.on('error', () => undefined);
  await client.end().catch(() => undefined);
}
