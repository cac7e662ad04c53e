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
      bus: 'postgres',
      channel: 'knox_cache',
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

  it.each([
    [null, /`cache` must be false, true or/],
    [[], /`cache` must be false, true or/],
    [{ max: 1.5 }, /`cache.max` must be a whole number/],
    [{ maxAge: 0 }, /`cache.maxAge` must be a duration/],
    [{ maxAge: Infinity }, /`cache.maxAge` must be a duration/],
    [{ bus: { redis: {} } }, /`cache.bus` must be 'postgres' or \{ redis \}/],
    [{ bus: { redis }, channel: 'x' }, /belong to the 'postgres' bus/],
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
