import type { ThrottlerStorage } from '@nestjs/throttler';

/** What `ThrottlerStorage.increment` resolves to (the type is not exported by name in every version). */
type ThrottlerRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

interface Entry {
  /** When each counted hit leaves the window (ms). */
  hits: number[];
  expiresAt: number;
  blockExpiresAt: number;
  isBlocked: boolean;
}

const SWEEP_INTERVAL = 60_000;

/**
 * An in-memory `ThrottlerStorage` that counts exactly as `@nestjs/throttler`'s
 * `ThrottlerStorageService` (6.x) does: a sliding window of hits per key, and past the limit a
 * block of `blockDuration`. {@link KnoxLoginThrottler} uses `ThrottlerStorageService` itself
 * wherever it can be loaded, and this only where it cannot: `@nestjs/throttler` 6 is CommonJS
 * and requires the ESM-only Nest 12, which Node loads (require(esm), Node >= 20.19) but Jest's
 * module sandbox cannot before Node 24.9, so every login in an app's Jest suite would fail.
 * A test runs both on the same hits and compares the answers.
 *
 * Keys are independent per throttler name here; knox uses a single name.
 */
export class KnoxMemoryThrottlerStorage implements ThrottlerStorage {
  private readonly entries = new Map<string, Entry>();
  private sweep: ReturnType<typeof setInterval> | undefined;

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerRecord> {
    this.startSweep();
    const now = Date.now();
    const id = `${throttlerName}\u0000${key}`;
    let entry = this.entries.get(id);
    if (!entry) {
      entry = {
        hits: [],
        expiresAt: now + ttl,
        blockExpiresAt: 0,
        isBlocked: false,
      };
      this.entries.set(id, entry);
    }
    entry.hits = entry.hits.filter((expiresAt) => expiresAt > now);
    let timeToExpire = seconds(entry.expiresAt - now);
    if (timeToExpire <= 0) {
      entry.expiresAt = now + ttl;
      timeToExpire = seconds(entry.expiresAt - now);
    }
    if (blockDuration <= 0) {
      const isBlocked = entry.hits.length >= limit;
      if (!isBlocked) {
        entry.hits.push(now + ttl);
      }
      return {
        totalHits: entry.hits.length + (isBlocked ? 1 : 0),
        timeToExpire,
        isBlocked,
        timeToBlockExpire: isBlocked
          ? entry.hits.length
            ? seconds(Math.min(...entry.hits) - now)
            : timeToExpire
          : 0,
      };
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
