import { describe, expect, it } from '@jest/globals';
import { KnoxToken } from '../store/knox-token.entity.js';
import {
  KnoxTokenCache,
  formatKnoxCacheMessage,
  parseKnoxCacheMessage,
} from './knox-token-cache.js';

class Clock {
  at = Date.parse('2030-01-01T00:00:00Z');
  now(): Date {
    return new Date(this.at);
  }
}

const HOUR = 3_600_000;

function token(digest: string, clock: Clock, expiresIn: number | null = HOUR) {
  const record = new KnoxToken();
  Object.assign(record, {
    digest,
    id: `id-${digest}`,
    expiry: expiresIn === null ? null : new Date(clock.at + expiresIn),
    lastUsedAt: null,
    retiredAt: null,
  });
  return record;
}

function setup(max = 10, maxAge = 60_000) {
  const clock = new Clock();
  const cache = new KnoxTokenCache(max, maxAge, clock);
  cache.resume();
  const put = (digest: string, userId = 1, expiresIn: number | null = HOUR) =>
    cache.remember(
      cache.ticket(),
      { user: { id: userId }, token: token(digest, clock, expiresIn) },
      userId,
    );
  return { clock, cache, put };
}

describe('KnoxTokenCache', () => {
  it('serves a copy of the record, the same user', () => {
    const { cache, put } = setup();
    expect(put('d1')).toBe(true);
    const first = cache.get('d1')!;
    const second = cache.get('d1')!;
    expect(first.token).toBeInstanceOf(KnoxToken);
    expect(first.token).not.toBe(second.token);
    expect(first.user).toBe(second.user);
    first.token.expiry = null;
    expect(cache.get('d1')!.token.expiry).not.toBeNull();
  });

  it('misses once maxAge has passed, and never serves past the expiry', () => {
    const { cache, clock, put } = setup(10, 60_000);
    put('young');
    clock.at += 59_999;
    expect(cache.get('young')).toBeDefined();
    clock.at += 1;
    expect(cache.get('young')).toBeUndefined();
    put('short', 1, 10_000);
    clock.at += 10_000;
    expect(cache.get('short')).toBeDefined();
    clock.at += 1;
    expect(cache.get('short')).toBeUndefined();
    put('forever', 1, null);
    clock.at += 59_999;
    expect(cache.get('forever')).toBeDefined();
  });

  it('misses when the clock goes back before the entry was stored', () => {
    const { cache, clock, put } = setup();
    put('d');
    clock.at -= 1;
    expect(cache.get('d')).toBeUndefined();
  });

  it('holds at most max entries, least recently used out first', () => {
    const { cache, put } = setup(3);
    for (const d of ['a', 'b', 'c']) {
      put(d);
    }
    cache.get('a');
    put('d');
    expect(cache.size).toBe(3);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBeDefined();
    for (let i = 0; i < 1000; i++) {
      put(`x${i}`, i);
    }
    expect(cache.size).toBe(3);
  });

  it('refuses to remember after an invalidation of that token, its user, or a flush since the ticket', () => {
    const { cache, clock } = setup();
    const remember = (ticket: number, digest: string, user: number) =>
      cache.remember(ticket, { user: {}, token: token(digest, clock) }, user);

    let ticket = cache.ticket();
    cache.deleteTokens(['d']);
    expect(remember(ticket, 'd', 1)).toBe(false);
    expect(cache.get('d')).toBeUndefined();

    ticket = cache.ticket();
    cache.deleteUser(1);
    expect(remember(ticket, 'd', 1)).toBe(false);

    ticket = cache.ticket();
    cache.clear();
    expect(remember(ticket, 'd', 1)).toBe(false);

    // Another token's or user's invalidation (e.g. the notification of a legacy digest's
    // upgrade, which names the old digest) does not refuse it.
    ticket = cache.ticket();
    cache.deleteTokens(['unrelated']);
    cache.deleteUser(2);
    expect(remember(ticket, 'd', 1)).toBe(true);
    expect(cache.get('d')).toBeDefined();
  });

  it('stays safe when it forgets old invalidations: refuses every earlier ticket', () => {
    const { cache, clock } = setup();
    const ticket = cache.ticket();
    cache.deleteTokens(['d']);
    // Push the record of 'd' out of the bounded memory of invalidations.
    for (let i = 0; i < 10_001; i += 1) {
      cache.deleteTokens([`x${i}`]);
    }
    expect(
      cache.remember(ticket, { user: {}, token: token('d', clock) }, 1),
    ).toBe(false);
    const later = cache.ticket();
    expect(
      cache.remember(later, { user: {}, token: token('d', clock) }, 1),
    ).toBe(true);
  });

  it('drops by digest, by user, or everything; and tells the bus of local ones only', () => {
    const { cache, put } = setup();
    const told: unknown[] = [];
    cache.onLocalInvalidation = (m) => told.push(m);
    put('a1', 1);
    put('a2', 1);
    put('b1', 2);
    cache.deleteUser(1);
    expect([cache.get('a1'), cache.get('a2')]).toEqual([undefined, undefined]);
    expect(cache.get('b1')).toBeDefined();
    cache.apply({ kind: 'tokens', digests: ['b1'] });
    expect(cache.get('b1')).toBeUndefined();
    put('c1', 3);
    cache.apply({ kind: 'flush' });
    expect(cache.size).toBe(0);
    cache.deleteTokens(['z']);
    expect(told).toEqual([
      { kind: 'user', userId: '1' },
      { kind: 'tokens', digests: ['z'] },
    ]);
  });

  it('is bypassed while suspended, and comes back empty', () => {
    const { cache, put } = setup();
    put('a');
    cache.suspend();
    expect(cache.available).toBe(false);
    expect(cache.get('a')).toBeUndefined();
    expect(put('b')).toBe(false);
    cache.resume();
    expect(cache.size).toBe(0);
    expect(put('b')).toBe(true);
  });

  it('update replaces the cached record and keeps its age', () => {
    const { cache, clock, put } = setup(10, 60_000);
    put('a');
    clock.at += 30_000;
    const changed = token('a', clock, 2 * HOUR);
    changed.lastUsedAt = clock.now();
    cache.update(changed);
    expect(cache.get('a')!.token.lastUsedAt).toEqual(clock.now());
    clock.at += 30_000;
    expect(cache.get('a')).toBeUndefined();
    cache.update(token('missing', clock));
    expect(cache.get('missing')).toBeUndefined();
  });
});

describe('the wire format', () => {
  it('round-trips, and reads anything unknown as a flush', () => {
    for (const m of [
      { kind: 'tokens' as const, digests: ['a', 'b'] },
      { kind: 'user' as const, userId: '42' },
      { kind: 'flush' as const },
    ]) {
      expect(parseKnoxCacheMessage(formatKnoxCacheMessage(m))).toEqual(m);
    }
    expect(parseKnoxCacheMessage('garbage')).toEqual({ kind: 'flush' });
  });
});
