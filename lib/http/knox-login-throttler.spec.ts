import { describe, expect, it } from '@jest/globals';
import { HttpException } from '@nestjs/common';
import { KnoxLoginThrottler } from './knox-login-throttler.js';
import { KnoxMemoryThrottlerStorage } from './knox-memory-throttler-storage.js';
import { resolveKnoxOptions } from '../options/knox-options.js';
import type { KnoxLoginThrottleOptions } from '../options/knox-login-throttle-options.js';

function throttler(loginThrottle: KnoxLoginThrottleOptions) {
  const it = new KnoxLoginThrottler(
    resolveKnoxOptions({ validateUser: () => null, loginThrottle }),
  );
  const storage = () =>
    (it as unknown as { defaultStorage?: KnoxMemoryThrottlerStorage })
      .defaultStorage;
  return { it, storage };
}

describe('KnoxLoginThrottler: the default storage is bounded by loginThrottle.maxKeys', () => {
  it('holds at most maxKeys counters under a spray of distinct usernames and addresses', async () => {
    const { it: limiter, storage } = throttler({ maxKeys: 40 });
    const headers: Record<string, string> = {};
    const response = { setHeader: (n: string, v: string) => (headers[n] = v) };
    try {
      for (let i = 0; i < 2_000; i++) {
        await limiter.hit(`spray-${i}`, `10.0.${i >> 8}.${i & 255}`, response);
        expect(storage()!.size).toBeLessThanOrEqual(40);
      }
      expect(storage()).toBeInstanceOf(KnoxMemoryThrottlerStorage);
      expect(storage()!.size).toBe(40);
      expect(headers).toEqual({});
      // Throttling still works for a username being guessed (11th attempt > 10).
      const guess = () => limiter.hit('alice', '192.0.2.1', response);
      for (let i = 0; i < 10; i++) {
        await guess();
      }
      await expect(guess()).rejects.toBeInstanceOf(HttpException);
      expect(headers['Retry-After']).toBe('60');
    } finally {
      limiter.onApplicationShutdown();
    }
  });

  it('uses the documented default cap of 100 000', async () => {
    const { it: limiter, storage } = throttler({});
    try {
      await limiter.hit('alice', '192.0.2.1', null);
      const cap = (storage() as unknown as { maxKeys: number }).maxKeys;
      expect(cap).toBe(100_000);
    } finally {
      limiter.onApplicationShutdown();
    }
  });
});
