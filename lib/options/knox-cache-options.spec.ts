import { describe, expect, it } from '@jest/globals';
import { KnoxOptionsError } from './knox-options-error.js';
import { resolveKnoxCacheOptions } from './knox-cache-options.js';

const redis = { publish: () => 1, duplicate: () => ({}) as never };

describe('resolveKnoxCacheOptions', () => {
  it('is off by default and for false', () => {
    expect(resolveKnoxCacheOptions(undefined)).toBeNull();
    expect(resolveKnoxCacheOptions(false)).toBeNull();
  });

  it('applies the documented defaults', () => {
    expect(resolveKnoxCacheOptions(true)).toEqual({
      max: 10_000,
      maxAge: 60_000,
      bus: 'auto',
      channel: 'knox_cache',
      pollInterval: 50,
      installTriggers: undefined,
    });
    expect(resolveKnoxCacheOptions({ max: 5, maxAge: 1000 })).toMatchObject({
      max: 5,
      maxAge: 1000,
    });
  });

  it('takes a Redis bus with its own channel', () => {
    expect(
      resolveKnoxCacheOptions({ bus: { redis, channel: 'app:knox' } }),
    ).toMatchObject({ bus: { redis }, channel: 'app:knox' });
  });

  it('takes the poll bus with its interval', () => {
    expect(
      resolveKnoxCacheOptions({ bus: 'poll', pollInterval: 20 }),
    ).toMatchObject({ bus: 'poll', pollInterval: 20 });
    expect(resolveKnoxCacheOptions({ bus: 'poll' })).toMatchObject({
      pollInterval: 50,
    });
  });

  it.each([
    [null, /`cache` must be false, true or/],
    [[], /`cache` must be false, true or/],
    [{ max: 1.5 }, /`cache.max` must be a whole number/],
    [{ maxAge: 0 }, /`cache.maxAge` must be a duration/],
    [{ maxAge: Infinity }, /`cache.maxAge` must be a duration/],
    [
      { bus: { redis: {} } },
      /`cache.bus` must be 'postgres', 'poll' or \{ redis \}/,
    ],
    [{ bus: { redis }, channel: 'x' }, /belong to the 'postgres' and 'poll'/],
    [{ bus: 'poll', pollInterval: 5 }, /from 10 to 1000, below/],
    [{ bus: 'poll', pollInterval: 2000 }, /from 10 to 1000/],
    [{ bus: 'poll', pollInterval: 12.5 }, /whole number of milliseconds/],
    [{ bus: 'poll', pollInterval: 500, maxAge: 400 }, /below `cache.maxAge`/],
    [{ bus: 'postgres', pollInterval: 50 }, /belongs to the 'poll' bus/],
    [
      { channel: 'a;drop table' },
      /`cache.channel` must be a lower-case SQL identifier/,
    ],
    [
      { installTriggers: 'yes' },
      /`cache.installTriggers` must be true or false/,
    ],
    [{ ttl: 5 }, /unknown option\(s\) ttl/],
  ])('refuses %p', (value, message) => {
    expect(() => resolveKnoxCacheOptions(value)).toThrow(KnoxOptionsError);
    expect(() => resolveKnoxCacheOptions(value)).toThrow(message);
  });
});
