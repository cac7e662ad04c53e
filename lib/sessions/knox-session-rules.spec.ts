import { describe, expect, it } from '@jest/globals';
import {
  chooseEvictions,
  graceEnd,
  graceFitsLimit,
  isExpired,
  personalTokenCap,
  planTouch,
  refreshedExpiry,
  rotatedExpiry,
  type KnoxLifetimeOptions,
} from './knox-session-rules.js';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const at = (ms: number) => new Date(T0 + ms);

const options: KnoxLifetimeOptions = {
  tokenTtl: 10 * HOUR,
  autoRefresh: true,
  autoRefreshMaxTtl: null,
  minRefreshInterval: MINUTE,
  lastUsedUpdateInterval: MINUTE,
};

const token = (over: Record<string, unknown> = {}) => ({
  created: at(0),
  expiry: at(10 * HOUR) as Date | null,
  ttl: null as number | null,
  lastUsedAt: at(0) as Date | null,
  retiredAt: null as Date | null,
  ...over,
});

describe('isExpired', () => {
  it('is valid up to and including its expiry; never for no expiry', () => {
    expect(isExpired(token(), at(10 * HOUR))).toBe(false);
    expect(isExpired(token(), at(10 * HOUR + 1))).toBe(true);
    expect(isExpired(token({ expiry: null }), at(1000 * HOUR))).toBe(false);
  });
});

describe('refreshedExpiry', () => {
  it('now + the token TTL, else the module TTL, capped by autoRefreshMaxTtl', () => {
    expect(refreshedExpiry(token(), at(HOUR), options)).toEqual(at(11 * HOUR));
    expect(refreshedExpiry(token({ ttl: HOUR }), at(HOUR), options)).toEqual(
      at(2 * HOUR),
    );
    expect(
      refreshedExpiry(token(), at(5 * HOUR), {
        ...options,
        autoRefreshMaxTtl: 12 * HOUR,
      }),
    ).toEqual(at(12 * HOUR));
    expect(
      refreshedExpiry(token(), at(HOUR), { ...options, tokenTtl: null }),
    ).toBeNull();
  });

  it("never past the token's own maxExpiry (a PAT's created + maxTtl)", () => {
    const capped = token({ maxExpiry: at(10 * HOUR + 30 * MINUTE) });
    expect(refreshedExpiry(capped, at(HOUR), options)).toEqual(
      at(10 * HOUR + 30 * MINUTE),
    );
    expect(refreshedExpiry(capped, at(10 * MINUTE), options)).toEqual(
      at(10 * HOUR + 10 * MINUTE),
    );
    expect(planTouch(capped, at(2 * HOUR), options)).toEqual({
      write: true,
      expiry: at(10 * HOUR + 30 * MINUTE),
    });
    expect(rotatedExpiry(capped, at(5 * HOUR), options)).toEqual(
      at(10 * HOUR + 30 * MINUTE),
    );
  });
});

describe('personalTokenCap', () => {
  const minter = { expiry: at(10 * HOUR), maxExpiry: null };
  it('created + maxTtl; minted by a token (no password): never past that token', () => {
    expect(personalTokenCap(at(HOUR), 24 * HOUR, null)).toEqual(at(25 * HOUR));
    expect(personalTokenCap(at(HOUR), null, null)).toBeNull();
    expect(personalTokenCap(at(HOUR), 24 * HOUR, minter)).toEqual(
      at(10 * HOUR),
    );
    expect(personalTokenCap(at(HOUR), null, minter)).toEqual(at(10 * HOUR));
    expect(
      personalTokenCap(at(HOUR), null, { expiry: null, maxExpiry: null }),
    ).toBeNull();
    expect(
      personalTokenCap(at(HOUR), 2 * HOUR, {
        expiry: at(10 * HOUR),
        maxExpiry: at(5 * HOUR),
      }),
    ).toEqual(at(3 * HOUR));
  });
});

describe('planTouch', () => {
  it('writes nothing within both intervals', () => {
    expect(planTouch(token(), at(30 * SECOND), options)).toEqual({
      write: false,
    });
  });

  it('writes last use and the refreshed expiry together once either is due', () => {
    expect(planTouch(token(), at(2 * MINUTE), options)).toEqual({
      write: true,
      expiry: at(10 * HOUR + 2 * MINUTE),
    });
  });

  it('writes last use only when auto refresh is off, or capped', () => {
    const now = at(2 * MINUTE);
    expect(planTouch(token(), now, { ...options, autoRefresh: false })).toEqual(
      {
        write: true,
      },
    );
    expect(
      planTouch(token(), now, { ...options, autoRefreshMaxTtl: 10 * HOUR }),
    ).toEqual({ write: true });
  });

  it('writes nothing at all for a retired token: it is read-only in its grace period', () => {
    const retired = token({ retiredAt: at(MINUTE) });
    for (const now of [at(2 * MINUTE), at(9 * HOUR)]) {
      expect(planTouch(retired, now, options)).toEqual({ write: false });
      expect(
        planTouch(retired, now, { ...options, autoRefresh: false }),
      ).toEqual({ write: false });
      expect(planTouch({ ...retired, lastUsedAt: null }, now, options)).toEqual(
        { write: false },
      );
    }
  });

  it('a token never used (a Django row) is written at once', () => {
    expect(
      planTouch(token({ lastUsedAt: null }), at(SECOND), {
        ...options,
        autoRefresh: false,
      }),
    ).toEqual({ write: true });
  });
});

describe('rotation', () => {
  it("the successor's expiry is refreshed, never earlier than the old one's", () => {
    expect(rotatedExpiry(token(), at(HOUR), options)).toEqual(at(11 * HOUR));
    expect(rotatedExpiry(token({ ttl: MINUTE }), at(0), options)).toEqual(
      at(10 * HOUR),
    );
    expect(
      rotatedExpiry(token({ expiry: null }), at(HOUR), options),
    ).toBeNull();
  });

  it('the grace period ends at now + grace, never past the old expiry; 0 means at once', () => {
    expect(graceEnd(token(), at(HOUR), 30 * SECOND)).toEqual(
      at(HOUR + 30 * SECOND),
    );
    expect(graceEnd(token(), at(10 * HOUR - SECOND), 30 * SECOND)).toEqual(
      at(10 * HOUR),
    );
    expect(graceEnd(token(), at(HOUR), 0)).toBeNull();
  });

  it('keeps the retired token only when the successor and it fit under the limit', () => {
    expect(graceFitsLimit(3, null)).toBe(true);
    expect(graceFitsLimit(2, 3)).toBe(true);
    expect(graceFitsLimit(3, 3)).toBe(false);
  });
});

describe('chooseEvictions', () => {
  const a = token({ created: at(0), lastUsedAt: at(5 * HOUR) });
  const b = token({ created: at(HOUR), lastUsedAt: at(HOUR) });
  const c = token({ created: at(2 * HOUR), lastUsedAt: at(3 * HOUR) });

  it('nothing while there is room; null (refuse) under reject', () => {
    expect(chooseEvictions([a, b], 3, 'reject')).toEqual([]);
    expect(chooseEvictions([a, b, c], 3, 'reject')).toBeNull();
  });

  it('the oldest, or the least recently used, enough to fit one more', () => {
    expect(chooseEvictions([c, a, b], 3, 'evict-oldest')).toEqual([a]);
    expect(chooseEvictions([a, b, c], 3, 'evict-least-recently-used')).toEqual([
      b,
    ]);
    expect(chooseEvictions([a, b, c], 2, 'evict-oldest')).toEqual([a, b]);
  });

  it('tokens retired by a rotation go first', () => {
    const retired = token({ created: at(3 * HOUR), retiredAt: at(4 * HOUR) });
    expect(chooseEvictions([a, b, retired], 3, 'evict-oldest')).toEqual([
      retired,
    ]);
    expect(
      chooseEvictions([a, b, retired], 3, 'evict-least-recently-used'),
    ).toEqual([retired]);
  });
});
