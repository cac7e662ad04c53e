import { describe, expect, it } from '@jest/globals';
import { KnoxOptionsError } from './knox-options-error.js';
import {
  checkPruneBatchSize,
  checkTokenLimit,
  checkTokenLimitPolicy,
  checkTokenName,
  checkTokenPrefix,
  checkTokenTtl,
  type KnoxCheckSite,
} from './knox-option-checks.js';

/** The error thrown by `run`, checking its class for the site. */
function thrown(where: KnoxCheckSite, run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (where === 'boot') {
      expect(error).toBeInstanceOf(KnoxOptionsError);
    } else {
      expect(error).not.toBeInstanceOf(KnoxOptionsError);
      expect(error).toBeInstanceOf(Error);
    }
    return (error as Error).message;
  }
  throw new Error('the check accepted the value');
}

const LARGEST_DATE = 8.64e15;

describe('checkTokenTtl', () => {
  it('accepts null and durations >= 0, and returns them', () => {
    for (const where of ['boot', 'service'] as const) {
      expect(checkTokenTtl(null, where)).toBeNull();
      expect(checkTokenTtl(0, where)).toBe(0);
      expect(checkTokenTtl(3_600_000, where)).toBe(3_600_000);
    }
  });

  it('words a bad TTL for the module at boot and for the service on a call', () => {
    expect(thrown('boot', () => checkTokenTtl(-1, 'boot'))).toBe(
      'KnoxModule: `tokenTtl` must be a duration in milliseconds (a finite number >= 0) or null; got -1.',
    );
    expect(thrown('service', () => checkTokenTtl(-1, 'service'))).toBe(
      'KnoxTokenService: a token TTL must be a number of ms >= 0 that gives a valid expiry date, or null (never expires); got -1.',
    );
    for (const bad of [Number.NaN, Infinity, '60000', true, undefined, {}]) {
      expect(thrown('service', () => checkTokenTtl(bad, 'service'))).toBe(
        `KnoxTokenService: a token TTL must be a number of ms >= 0 that gives a valid expiry date, or null (never expires); got ${String(bad)}.`,
      );
    }
  });

  it('refuses a TTL whose expiry is past the largest Date, at boot and on the service', () => {
    const now = Date.UTC(2030, 0, 1);
    const over = LARGEST_DATE - now + 1;
    expect(checkTokenTtl(over - 1, 'service', now)).toBe(over - 1);
    expect(thrown('boot', () => checkTokenTtl(over, 'boot', now))).toBe(
      `KnoxModule: \`tokenTtl\` of ${over} ms puts the expiry past the largest date JavaScript can hold; use null for tokens that never expire.`,
    );
    expect(
      thrown('service', () =>
        checkTokenTtl(Number.MAX_SAFE_INTEGER, 'service', now),
      ),
    ).toBe(
      `KnoxTokenService: a token TTL must be a number of ms >= 0 that gives a valid expiry date, or null (never expires); got ${Number.MAX_SAFE_INTEGER}.`,
    );
  });

  it('says a string that holds a number is a string, and how to convert it', () => {
    expect(thrown('boot', () => checkTokenTtl('3600000', 'boot'))).toBe(
      "KnoxModule: `tokenTtl` must be a duration in milliseconds (a finite number >= 0) or null; got the string '3600000'. Configuration values are strings: convert it with `Number(...)`, or have a @nestjs/config validation schema convert it (e.g. `Joi.number()`) and read it with `ConfigService.get<number>(…, { infer: true })`.",
    );
    expect(thrown('boot', () => checkTokenTtl('10h', 'boot'))).toBe(
      "KnoxModule: `tokenTtl` must be a duration in milliseconds (a finite number >= 0) or null; got the string '10h'.",
    );
  });
});

describe('checkTokenPrefix', () => {
  it('accepts up to 10 printable characters, and checksum prefixes ending in _', () => {
    for (const where of ['boot', 'service'] as const) {
      expect(checkTokenPrefix('', 'knox', where)).toBe('');
      expect(checkTokenPrefix('TEST_TOKEN', 'knox', where)).toBe('TEST_TOKEN');
      expect(checkTokenPrefix('myapp_', 'checksum', where)).toBe('myapp_');
    }
  });

  it.each([
    [
      'TEST_TOKEN_',
      'knox',
      "KnoxModule: `tokenPrefix` must be at most 10 characters; 'TEST_TOKEN_' has 11.",
      "KnoxTokenService: a token prefix must be at most 10 printable ASCII characters without spaces; got 'TEST_TOKEN_'.",
    ],
    [
      'a b',
      'knox',
      'KnoxModule: `tokenPrefix` may only contain printable ASCII characters without spaces.',
      "KnoxTokenService: a token prefix must be at most 10 printable ASCII characters without spaces; got 'a b'.",
    ],
    [
      42,
      'knox',
      'KnoxModule: `tokenPrefix` must be a string.',
      "KnoxTokenService: a token prefix must be at most 10 printable ASCII characters without spaces; got '42'.",
    ],
    [
      'app-',
      'checksum',
      "KnoxModule: with `tokenFormat: 'checksum'`, `tokenPrefix` must be at least 4 characters and end in '_' (e.g. 'myapp_'); got 'app-'.",
      "KnoxTokenService: with tokenFormat 'checksum', a token prefix must be at least 4 characters and end in '_'; got 'app-'.",
    ],
    [
      'ab_',
      'checksum',
      "KnoxModule: with `tokenFormat: 'checksum'`, `tokenPrefix` must be at least 4 characters and end in '_' (e.g. 'myapp_'); got 'ab_'.",
      "KnoxTokenService: with tokenFormat 'checksum', a token prefix must be at least 4 characters and end in '_'; got 'ab_'.",
    ],
  ] as const)(
    'refuses %p (%s) with each wording',
    (prefix, format, boot, service) => {
      expect(
        thrown('boot', () => checkTokenPrefix(prefix, format, 'boot')),
      ).toBe(boot);
      expect(
        thrown('service', () => checkTokenPrefix(prefix, format, 'service')),
      ).toBe(service);
    },
  );
});

describe('checkTokenLimit and checkTokenLimitPolicy', () => {
  it('accept null, whole numbers >= 1 and the three policies', () => {
    expect(checkTokenLimit(null, 'service')).toBeNull();
    expect(checkTokenLimit(3, 'boot')).toBe(3);
    expect(checkTokenLimitPolicy('evict-oldest', 'service')).toBe(
      'evict-oldest',
    );
  });

  it('word a bad limit for each site', () => {
    expect(thrown('boot', () => checkTokenLimit(0, 'boot'))).toBe(
      'KnoxModule: `tokenLimitPerUser` must be a whole number >= 1 or null; got 0.',
    );
    for (const bad of [0, -1, 2.5, Number.NaN, '3', true, undefined]) {
      expect(thrown('service', () => checkTokenLimit(bad, 'service'))).toBe(
        `KnoxTokenService: a token limit must be a whole number >= 1 or null; got ${String(bad)}.`,
      );
    }
    expect(thrown('boot', () => checkTokenLimit('3', 'boot'))).toMatch(
      /^KnoxModule: `tokenLimitPerUser` must be a whole number >= 1 or null; got the string '3'\. Configuration values are strings: convert it with `Number\(\.\.\.\)`/,
    );
  });

  it('word a bad policy for each site', () => {
    expect(
      thrown('boot', () => checkTokenLimitPolicy('evict-newest', 'boot')),
    ).toBe(
      "KnoxModule: `tokenLimitPolicy` must be one of 'reject', 'evict-oldest', 'evict-least-recently-used'; got evict-newest.",
    );
    expect(
      thrown('service', () => checkTokenLimitPolicy('evict-newest', 'service')),
    ).toBe(
      'KnoxTokenService: a token limit policy must be one of reject, evict-oldest, evict-least-recently-used; got evict-newest.',
    );
  });
});

describe('checkTokenName and checkPruneBatchSize', () => {
  it('accept a name of up to 200 characters or null, and a batch size >= 1', () => {
    expect(checkTokenName(null)).toBeNull();
    expect(checkTokenName('x'.repeat(200))).toBe('x'.repeat(200));
    expect(checkPruneBatchSize(1)).toBe(1);
  });

  it("refuse a name over the column's size or not a string, and a bad batch size", () => {
    for (const bad of ['x'.repeat(201), 5, {}]) {
      expect(thrown('service', () => checkTokenName(bad))).toBe(
        "KnoxTokenService: a token name must be a string of at most 200 characters (the column's size) or null.",
      );
    }
    expect(thrown('service', () => checkPruneBatchSize(0))).toBe(
      "KnoxTokenService: pruneExpired's batchSize must be a whole number >= 1; got 0.",
    );
  });
});
