import { describe, expect, it } from '@jest/globals';
import { KnoxTokenCache, type KnoxCacheMessage } from './knox-token-cache.js';

const clock = { now: () => new Date('2030-01-01T00:00:00Z') };

/** `onInvalidation`: what the WebSocket registry listens to (issue 23, item 4). */
describe('KnoxTokenCache.onInvalidation', () => {
  function setup() {
    const cache = new KnoxTokenCache(10, 60_000, clock);
    const seen: KnoxCacheMessage[] = [];
    cache.onInvalidation = (message) => seen.push(message);
    return { cache, seen };
  }

  it('hears local invalidations and bus messages alike', () => {
    const { cache, seen } = setup();
    cache.deleteTokens(['a', 'b']);
    cache.deleteUser(7);
    cache.apply({ kind: 'tokens', digests: ['c'] });
    cache.apply({ kind: 'user', userId: '8' });
    cache.apply({ kind: 'flush' });
    expect(seen).toEqual([
      { kind: 'tokens', digests: ['a', 'b'] },
      { kind: 'user', userId: '7' },
      { kind: 'tokens', digests: ['c'] },
      { kind: 'user', userId: '8' },
      { kind: 'flush' },
    ]);
  });

  it('hears a flush when the bus drops and when it comes back', () => {
    const { cache, seen } = setup();
    cache.resume();
    cache.suspend();
    expect(seen).toEqual([{ kind: 'flush' }, { kind: 'flush' }]);
  });

  it('says nothing for an empty list of digests', () => {
    const { cache, seen } = setup();
    cache.deleteTokens([]);
    expect(seen).toEqual([]);
  });
});
