import { describe, expect, it } from '@jest/globals';
import { resolveKnoxOptions } from './knox-options.js';
import { KnoxOptionsError } from './knox-options-error.js';
import type { KnoxModuleOptions } from './knox-module-options.interface.js';

const validateUser = () => null;

function resolve(options: Partial<KnoxModuleOptions>) {
  return resolveKnoxOptions({ validateUser, ...options } as KnoxModuleOptions);
}

/** The message of the KnoxOptionsError thrown when resolving `options`. */
function failure(options: unknown): string {
  try {
    resolveKnoxOptions(options as KnoxModuleOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(KnoxOptionsError);
    return (error as Error).message;
  }
  throw new Error('resolveKnoxOptions accepted the options');
}

describe('resolveKnoxOptions', () => {
  it("applies django-rest-knox's defaults", () => {
    const resolved = resolve({});
    expect(resolved).toMatchObject({
      tokenTtl: 10 * 60 * 60 * 1000,
      tokenLimitPerUser: null,
      tokenLimitPolicy: 'reject',
      autoRefresh: false,
      autoRefreshMaxTtl: null,
      minRefreshInterval: 60_000,
      lastUsedUpdateInterval: 60_000,
      tokenPrefix: '',
      tokenCharacterLength: 64,
      tokenFormat: 'knox',
    });
    expect(resolved.authSchemes[0]).toBe('Token');
    expect(resolved.formatExpiry(new Date('2030-01-01T10:00:00Z'))).toBe(
      '2030-01-01T10:00:00.000Z',
    );
  });

  it('keeps tokenTtl: null (tokens that never expire) and a given limit', () => {
    const resolved = resolve({ tokenTtl: null, tokenLimitPerUser: 3 });
    expect(resolved.tokenTtl).toBeNull();
    expect(resolved.tokenLimitPerUser).toBe(3);
  });

  it('accepts a 10-character prefix', () => {
    expect(resolve({ tokenPrefix: 'TEST_TOKEN' }).tokenPrefix).toBe(
      'TEST_TOKEN',
    );
  });

  it('refuses an 11-character prefix, saying how long it may be', () => {
    expect(failure({ validateUser, tokenPrefix: 'TEST_TOKEN_' })).toBe(
      "KnoxModule: `tokenPrefix` must be at most 10 characters; 'TEST_TOKEN_' has 11.",
    );
  });

  it('refuses missing options and a missing validateUser', () => {
    expect(failure(undefined)).toMatch(/options are missing.*validateUser/);
    expect(failure({})).toBe(
      'KnoxModule: `validateUser(username, password, request)` is required: it checks credentials at login and returns the user or null.',
    );
  });

  it('refuses a negative or non-numeric tokenTtl, naming the unit', () => {
    expect(failure({ validateUser, tokenTtl: -1 })).toBe(
      'KnoxModule: `tokenTtl` must be a duration in milliseconds (a finite number >= 0) or null; got -1.',
    );
    expect(failure({ validateUser, tokenTtl: '10h' })).toMatch(
      /`tokenTtl` must be a duration in milliseconds/,
    );
    expect(failure({ validateUser, tokenTtl: Infinity })).toMatch(
      /`tokenTtl` must be a duration/,
    );
  });

  it('refuses bad durations of the refresh options', () => {
    expect(failure({ validateUser, minRefreshInterval: -5 })).toMatch(
      /`minRefreshInterval` must be a duration in milliseconds \(a finite number >= 0\); got -5\./,
    );
    expect(failure({ validateUser, autoRefreshMaxTtl: -1 })).toMatch(
      /`autoRefreshMaxTtl` must be a duration in milliseconds .* or null; got -1\./,
    );
  });

  it('refuses a token limit that is not a whole number >= 1', () => {
    expect(failure({ validateUser, tokenLimitPerUser: 0 })).toBe(
      'KnoxModule: `tokenLimitPerUser` must be a whole number >= 1 or null; got 0.',
    );
    expect(failure({ validateUser, tokenLimitPerUser: 2.5 })).toMatch(
      /`tokenLimitPerUser` must be a whole number/,
    );
  });

  it('refuses a prefix with spaces or non-ASCII characters', () => {
    expect(failure({ validateUser, tokenPrefix: 'a b' })).toMatch(
      /`tokenPrefix` may only contain printable ASCII characters without spaces/,
    );
    expect(failure({ validateUser, tokenPrefix: 'é_' })).toMatch(
      /`tokenPrefix` may only contain printable ASCII/,
    );
  });

  it('refuses an odd or too short tokenCharacterLength', () => {
    expect(failure({ validateUser, tokenCharacterLength: 63 })).toMatch(
      /`tokenCharacterLength` must be even and at least 32 \(128 bits\); got 63\./,
    );
    expect(failure({ validateUser, tokenCharacterLength: 16 })).toMatch(
      /must be even and at least 32/,
    );
  });

  it('refuses an empty or spaced authHeaderPrefix', () => {
    expect(failure({ validateUser, authHeaderPrefix: [] })).toMatch(
      /`authHeaderPrefix` must be a scheme name/,
    );
    expect(failure({ validateUser, authHeaderPrefix: 'My Token' })).toMatch(
      /`authHeaderPrefix` must be a scheme name/,
    );
    expect(resolve({ authHeaderPrefix: 'Baerer' }).authSchemes).toEqual([
      'Baerer',
    ]);
  });

  it('refuses hooks that are not functions', () => {
    expect(failure({ validateUser, getTokenTtl: 5 })).toBe(
      'KnoxModule: `getTokenTtl` must be a function.',
    );
    expect(failure({ validateUser, serializeUser: {} })).toBe(
      'KnoxModule: `serializeUser` must be a function.',
    );
  });

  it('refuses an unknown limit policy or token format', () => {
    expect(failure({ validateUser, tokenLimitPolicy: 'drop' })).toMatch(
      /`tokenLimitPolicy` must be one of 'reject', 'evict-oldest'/,
    );
    expect(failure({ validateUser, tokenFormat: 'jwt' })).toMatch(
      /`tokenFormat` must be 'knox' or 'checksum'; got jwt\./,
    );
  });
});

describe('resolveKnoxOptions: legacyTokenDigests', () => {
  it('defaults to none (null too)', () => {
    expect(resolve({}).legacyTokenDigests).toEqual([]);
    expect(
      resolve({ legacyTokenDigests: null as never }).legacyTokenDigests,
    ).toEqual([]);
  });

  it('keeps the given functions, in order, in a copy', () => {
    const first = (token: string) => `a${token}`;
    const second = () => null;
    const given = [first, second];
    const resolved = resolve({ legacyTokenDigests: given });
    expect(resolved.legacyTokenDigests).toEqual([first, second]);
    given.pop();
    expect(resolved.legacyTokenDigests).toHaveLength(2);
  });

  it('refuses something that is not an array', () => {
    const message =
      'KnoxModule: `legacyTokenDigests` must be an array of functions `(token) => digest`.';
    expect(failure({ validateUser, legacyTokenDigests: () => 'x' })).toBe(
      message,
    );
    expect(failure({ validateUser, legacyTokenDigests: 'sha256' })).toBe(
      message,
    );
  });

  it('refuses an item that is not a function, naming it', () => {
    expect(
      failure({ validateUser, legacyTokenDigests: [() => 'x', 'sha256'] }),
    ).toBe(
      'KnoxModule: `legacyTokenDigests` must be an array of functions `(token) => digest`; item 1 is string.',
    );
    expect(failure({ validateUser, legacyTokenDigests: [null] })).toBe(
      'KnoxModule: `legacyTokenDigests` must be an array of functions `(token) => digest`; item 0 is null.',
    );
  });
});

describe('the abilities options', () => {
  it('defaults: no login abilities, personal access tokens on with a 365-day cap and no createAbility', () => {
    const resolved = resolve({});
    expect(resolved.loginAbilities).toBeNull();
    expect(resolved.personalAccessTokens).toEqual({
      maxTtl: 365 * 24 * 60 * 60 * 1000,
      createAbility: null,
    });
    expect(resolved.getUsername({ username: 'alice' })).toBe('alice');
    expect(resolved.getUsername({ email: 'a@example.com' })).toBe(
      'a@example.com',
    );
    expect(resolve({ personalAccessTokens: false }).personalAccessTokens).toBe(
      null,
    );
    expect(
      resolve({
        loginAbilities: ['posts:*', 'posts:*'],
        personalAccessTokens: { maxTtl: null, createAbility: 'tokens:create' },
      }),
    ).toMatchObject({
      loginAbilities: ['posts:*'],
      personalAccessTokens: { maxTtl: null, createAbility: 'tokens:create' },
    });
  });

  it('refuses bad values with a message that says what to fix', () => {
    expect(failure({ validateUser, loginAbilities: 'posts:read' })).toBe(
      'KnoxModule: `loginAbilities` must be an array of ability names.',
    );
    expect(failure({ validateUser, loginAbilities: ['ok', 'not ok'] })).toMatch(
      /^KnoxModule: `loginAbilities`\[1\] is not an ability name \(/,
    );
    expect(
      failure({ validateUser, personalAccessTokens: { createAbility: '*' } }),
    ).toMatch(
      /^KnoxModule: `personalAccessTokens.createAbility` must be one ability without wildcard \(e.g. 'tokens:create'\), or null; got "\*"\./,
    );
    expect(failure({ validateUser, personalAccessTokens: { maxTtl: 0 } })).toBe(
      'KnoxModule: `personalAccessTokens.maxTtl` must be at least 1 ms, or null for no cap; got 0.',
    );
    expect(
      failure({ validateUser, personalAccessTokens: { maxTtl: 1e20 } }),
    ).toBe(
      'KnoxModule: `personalAccessTokens.maxTtl` of 100000000000000000000 ms puts the expiry past the largest date JavaScript can hold; use null for no cap.',
    );
    expect(failure({ validateUser, personalAccessTokens: true })).toBe(
      'KnoxModule: `personalAccessTokens` must be an object ({ maxTtl, createAbility }) or false.',
    );
    expect(failure({ validateUser, personalAccessTokens: { maxTTL: 5 } })).toBe(
      "KnoxModule: unknown option 'personalAccessTokens.maxTTL' — did you mean 'personalAccessTokens.maxTtl'?",
    );
    expect(failure({ validateUser, getTokenAbilities: ['a'] })).toBe(
      'KnoxModule: `getTokenAbilities` must be a function.',
    );
  });
});
