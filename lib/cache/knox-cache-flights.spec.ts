/**
 * KnoxCache.shareLookup (issue 23 item 2): concurrent lookups of one digest share one, with
 * the cache on or off; nothing is kept once it settles; an invalidation detaches a flight.
 */
import { describe, expect, it } from '@jest/globals';
import { UnauthorizedException } from '@nestjs/common';
import type { Repository } from 'typeorm';
import type { KnoxClock } from '../knox-clock.js';
import type { ResolvedKnoxOptions } from '../options/knox-options.js';
import { KnoxToken } from '../store/knox-token.entity.js';
import { KnoxCache } from './knox-cache.js';
import type { KnoxCachedAuth } from './knox-token-cache.js';

const clock: KnoxClock = { now: () => new Date('2030-01-01T00:00:00Z') };

function cacheWith(on: boolean): KnoxCache {
  const options = {
    cache: on
      ? { max: 10, maxAge: 60_000, bus: 'postgres', channel: 'knox' }
      : null,
  } as unknown as ResolvedKnoxOptions;
  const cache = new KnoxCache(
    options,
    {} as unknown as Repository<KnoxToken>,
    clock,
  );
  cache.store?.resume();
  return cache;
}

function auth(digest: string): KnoxCachedAuth {
  const token = new KnoxToken();
  Object.assign(token, { digest, id: `id-${digest}`, expiry: null });
  return { user: { id: 1 }, token };
}

/** A lookup the test settles by hand, counting how often it ran. */
function manualLookup() {
  let resolve!: (value: KnoxCachedAuth) => void;
  let reject!: (error: unknown) => void;
  const state = { runs: 0 };
  const lookup = () => {
    state.runs++;
    return new Promise<KnoxCachedAuth>((res, rej) => {
      resolve = res;
      reject = rej;
    });
  };
  return {
    state,
    lookup,
    resolve: (value: KnoxCachedAuth) => resolve(value),
    reject: (error: unknown) => reject(error),
  };
}

describe.each([
  ['cache off', false],
  ['cache on', true],
])('KnoxCache.shareLookup (%s)', (_name, on) => {
  it('concurrent calls share one lookup; each gets its own record of the same row', async () => {
    const cache = cacheWith(on);
    const m = manualLookup();
    const calls = Array.from({ length: 20 }, () =>
      cache.shareLookup('d1', m.lookup),
    );
    expect(m.state.runs).toBe(1);
    expect(cache.lookupsInFlight).toBe(1);
    const row = auth('d1');
    m.resolve(row);
    const results = await Promise.all(calls);
    expect(results[0].token).toBe(row.token);
    const records = new Set(results.map((r) => r.token));
    expect(records.size).toBe(20);
    for (const result of results) {
      expect(result.token).toBeInstanceOf(KnoxToken);
      expect(result.token).toEqual(row.token);
    }
    expect(cache.lookupsInFlight).toBe(0);
  });

  it('other digests do not share; a refusal is shared', async () => {
    const cache = cacheWith(on);
    const a = manualLookup();
    const b = manualLookup();
    const first = [
      cache.shareLookup('a', a.lookup),
      cache.shareLookup('a', a.lookup),
    ];
    const other = cache.shareLookup('b', b.lookup);
    expect([a.state.runs, b.state.runs]).toEqual([1, 1]);
    const refusal = new UnauthorizedException('Invalid token.');
    a.reject(refusal);
    b.resolve(auth('b'));
    for (const call of first) {
      await expect(call).rejects.toBe(refusal);
    }
    await expect(other).resolves.toMatchObject({ token: { digest: 'b' } });
  });

  it('nothing is kept once a flight settles: the next call looks up again', async () => {
    const cache = cacheWith(on);
    const m = manualLookup();
    const first = cache.shareLookup('d', m.lookup);
    m.resolve(auth('d'));
    await first;
    const second = cache.shareLookup('d', m.lookup);
    expect(m.state.runs).toBe(2);
    m.reject(new Error('down'));
    await expect(second).rejects.toThrow('down');
    const third = cache.shareLookup('d', m.lookup);
    expect(m.state.runs).toBe(3);
    m.resolve(auth('d'));
    await third;
  });

  it.each([
    ['the token is forgotten', (c: KnoxCache) => c.forgetTokens(['d'])],
    ['a user is forgotten', (c: KnoxCache) => c.forgetUser(7)],
  ])(
    'a call after an invalidation (%s) starts its own lookup; the flight still answers its callers',
    async (_what, invalidate) => {
      const cache = cacheWith(on);
      const before = manualLookup();
      const early = cache.shareLookup('d', before.lookup);
      invalidate(cache);
      const after = manualLookup();
      const late = cache.shareLookup('d', after.lookup);
      expect([before.state.runs, after.state.runs]).toEqual([1, 1]);
      // The detached flight settling does not drop the new one.
      before.resolve(auth('d'));
      await early;
      expect(cache.lookupsInFlight).toBe(1);
      const later = cache.shareLookup('d', after.lookup);
      expect(after.state.runs).toBe(1);
      after.resolve(auth('d'));
      await Promise.all([late, later]);
    },
  );

  it('an invalidation of another token leaves the flight shared', async () => {
    const cache = cacheWith(on);
    const m = manualLookup();
    const early = cache.shareLookup('d', m.lookup);
    cache.forgetTokens(['other']);
    const late = cache.shareLookup('d', m.lookup);
    expect(m.state.runs).toBe(1);
    m.resolve(auth('d'));
    await Promise.all([early, late]);
  });
});

describe('KnoxCache.shareLookup with the cache on', () => {
  it('a flush or a bus message detaches the flights', async () => {
    const cache = cacheWith(true);
    const m = manualLookup();
    const first = cache.shareLookup('d', m.lookup);
    cache.store!.apply({ kind: 'tokens', digests: ['d'] });
    const second = cache.shareLookup('d', m.lookup);
    cache.store!.clear();
    const third = cache.shareLookup('d', m.lookup);
    expect(m.state.runs).toBe(3);
    m.resolve(auth('d'));
    await third;
    void first;
    void second;
  });
});
