import type { Logger } from '@nestjs/common';
import type {
  KnoxRedisClient,
  KnoxRedisSubscriber,
} from '../options/knox-cache-options.js';
import {
  formatKnoxCacheMessage,
  parseKnoxCacheMessage,
  type KnoxCacheMessage,
  type KnoxTokenCache,
} from './knox-token-cache.js';

/**
 * Invalidation through Redis pub/sub: this instance publishes its own writes (through the app's
 * client) and applies the others' (through a `duplicate()` of it in subscriber mode). Writers
 * other than this library are not seen; `maxAge` bounds how long they go unnoticed. While the
 * subscriber is not ready, the cache is suspended; when it is ready again, the cache starts
 * empty. Each message carries this instance's id so that it skips its own.
 */
export class KnoxRedisBus {
  private subscriber: KnoxRedisSubscriber | undefined;
  private readonly origin = Math.random().toString(36).slice(2, 10);

  constructor(
    private readonly redis: KnoxRedisClient,
    private readonly channel: string,
    private readonly cache: KnoxTokenCache,
    private readonly logger: Logger,
  ) {}

  /** Publishes this instance's writes and subscribes (through a duplicate) to the others'. */
  async start(): Promise<void> {
    this.cache.onLocalInvalidation = (message) => this.publish(message);
    const subscriber = this.redis.duplicate();
    this.subscriber = subscriber;
    subscriber.on('message', (channel: string, payload: string) =>
      this.receive(channel, payload),
    );
    const suspend = () => this.suspend();
    subscriber.on('close', suspend);
    subscriber.on('end', suspend);
    subscriber.on('reconnecting', suspend);
    subscriber.on('error', () => suspend());
    // ioredis restores subscriptions before 'ready'; subscribe again to be sure of it.
    subscriber.on('ready', () => {
      subscriber.subscribe(this.channel).then(
        () => this.cache.resume(),
        () => suspend(),
      );
    });
    try {
      await subscriber.subscribe(this.channel);
      this.cache.resume();
    } catch (error) {
      suspend();
      this.logger.warn(
        `Cache bus (Redis) could not subscribe: ${(error as Error).message}; cache bypassed until it can.`,
      );
    }
  }

  /** Applies another instance's message (this instance's own come back too: skipped). */
  private receive(channel: string, payload: string): void {
    if (channel !== this.channel) {
      return;
    }
    const at = payload.indexOf('|');
    if (payload.slice(0, at) === this.origin) {
      return;
    }
    this.cache.apply(parseKnoxCacheMessage(payload.slice(at + 1)));
  }

  /** The subscriber is not ready: every request goes to the database (logged once). */
  private suspend(): void {
    if (this.cache.available) {
      this.logger.warn(
        'Cache bus (Redis) down; every request goes to the database until it is back.',
      );
    }
    this.cache.suspend();
  }

  async stop(): Promise<void> {
    this.cache.onLocalInvalidation = undefined;
    this.cache.suspend();
    const subscriber = this.subscriber;
    this.subscriber = undefined;
    if (subscriber) {
      subscriber.removeAllListeners();
      subscriber.on('error', () => undefined);
      await subscriber.quit().catch(() => subscriber.disconnect());
    }
  }

  private publish(message: KnoxCacheMessage): void {
    try {
      void Promise.resolve(
        this.redis.publish(
          this.channel,
          `${this.origin}|${formatKnoxCacheMessage(message)}`,
        ),
      ).catch((error: Error) =>
        this.logger.error(`Cache bus (Redis) publish failed: ${error.message}`),
      );
    } catch (error) {
      this.logger.error(
        `Cache bus (Redis) publish failed: ${(error as Error).message}`,
      );
    }
  }
}
