import type { ThrottlerStorage } from '@nestjs/throttler';
import { DEFAULT_LOGIN_THROTTLE_MAX_KEYS } from '../options/knox-login-throttle-options.js';

/** What `ThrottlerStorage.increment` resolves to (the type is not exported by name in every version). */
type ThrottlerRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

interface Entry {
  /** When each counted hit leaves the window (ms). */
  hits: number[];
  expiresAt: number;
  blockExpiresAt: number;
  isBlocked: boolean;
}

/** Options of {@link KnoxMemoryThrottlerStorage}. */
export interface KnoxMemoryThrottlerStorageOptions {
  /**
   * The most keys held; past it, the key counted least recently is dropped first.
   * @default 100000
   */
  maxKeys?: number;
}

const SWEEP_INTERVAL = 60_000;

/**
 * The default storage of {@link KnoxLoginThrottler}: an in-memory `ThrottlerStorage` that
 * counts exactly as `@nestjs/throttler`'s `ThrottlerStorageService` (6.x) does with a block
 * (a sliding window of hits per key, and past the limit a block of `blockDuration`), and holds
 * at most `maxKeys` keys: a spray of distinct usernames or addresses evicts the keys counted
 * least recently instead of growing memory without bound (`ThrottlerStorageService` has no cap).
 * A test runs both on the same hits and compares the answers.
 *
 * `blockDuration` must be > 0: knox always blocks for the window (`loginThrottle.ttl` >= 1).
 * Keys are independent per throttler name here; knox uses a single name.
 */
export class KnoxMemoryThrottlerStorage implements ThrottlerStorage {
  /** In the order the keys were last counted: the first is the next to evict. */
  private readonly entries = new Map<string, Entry>();
  private sweep: ReturnType<typeof setInterval> | undefined;
  private readonly maxKeys: number;

  constructor(options: KnoxMemoryThrottlerStorageOptions = {}) {
    this.maxKeys = options.maxKeys ?? DEFAULT_LOGIN_THROTTLE_MAX_KEYS;
  }

  /** How many keys are held. */
  get size(): number {
    return this.entries.size;
  }

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerRecord> {
    this.startSweep();
    const now = Date.now();
    const entry = this.counted(`${throttlerName}\u0000${key}`, now, ttl);
    entry.hits = entry.hits.filter((expiresAt) => expiresAt > now);
    let timeToExpire = seconds(entry.expiresAt - now);
    if (timeToExpire <= 0) {
      entry.expiresAt = now + ttl;
      timeToExpire = seconds(entry.expiresAt - now);
    }
    if (!entry.isBlocked) {
      entry.hits.push(now + ttl);
    }
    if (entry.hits.length > limit && !entry.isBlocked) {
      entry.isBlocked = true;
      entry.blockExpiresAt = now + blockDuration;
    }
    const timeToBlockExpire = seconds(entry.blockExpiresAt - now);
    if (timeToBlockExpire <= 0 && entry.isBlocked) {
      entry.isBlocked = false;
      entry.hits = [now + ttl];
    }
    return {
      totalHits: entry.hits.length,
      timeToExpire,
      isBlocked: entry.isBlocked,
      timeToBlockExpire,
    };
  }

  /** The key's entry (new if absent), moved to the end of the eviction order. */
  private counted(id: string, now: number, ttl: number): Entry {
    let entry = this.entries.get(id);
    if (entry) {
      this.entries.delete(id);
    } else {
      entry = {
        hits: [],
        expiresAt: now + ttl,
        blockExpiresAt: 0,
        isBlocked: false,
      };
      for (const oldest of this.entries.keys()) {
        if (this.entries.size < this.maxKeys) {
          break;
        }
        this.entries.delete(oldest);
      }
    }
    this.entries.set(id, entry);
    return entry;
  }

  /** Stops the sweep and forgets every counter. */
  onApplicationShutdown(): void {
    if (this.sweep) {
      clearInterval(this.sweep);
      this.sweep = undefined;
    }
    this.entries.clear();
  }

  private startSweep(): void {
    if (this.sweep) {
      return;
    }
    this.sweep = setInterval(() => this.evictIdle(), SWEEP_INTERVAL);
    this.sweep.unref?.();
  }

  private evictIdle(now = Date.now()): void {
    for (const [id, entry] of this.entries) {
      const blocked = entry.isBlocked && entry.blockExpiresAt > now;
      const live = entry.hits.some((expiresAt) => expiresAt > now);
      if (!blocked && entry.expiresAt <= now && !live) {
        this.entries.delete(id);
      }
    }
  }
}

function seconds(ms: number): number {
  return Math.ceil(ms / 1000);
}
