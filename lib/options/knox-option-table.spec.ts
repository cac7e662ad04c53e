import { describe, expect, it } from '@jest/globals';
import {
  DEFAULT_LOGIN_THROTTLE_MAX_KEYS,
  KNOX_OPTIONS,
  resolveKnoxOptions,
} from './knox-options.js';
import { KnoxOptionsError } from './knox-options-error.js';
import { editDistance, nearestKey } from './knox-option-table.js';
import type { KnoxModuleOptions } from './knox-module-options.interface.js';

const validateUser = () => null;

function failure(options: Record<string, unknown>): string {
  try {
    resolveKnoxOptions({ validateUser, ...options } as KnoxModuleOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(KnoxOptionsError);
    return (error as Error).message;
  }
  throw new Error('resolveKnoxOptions accepted the options');
}

describe('unknown option keys', () => {
  it('names the nearest valid key, whatever the case', () => {
    expect(failure({ tokenTTL: 5 })).toBe(
      "KnoxModule: unknown option 'tokenTTL' — did you mean 'tokenTtl'?",
    );
    expect(failure({ autorefresh: true })).toBe(
      "KnoxModule: unknown option 'autorefresh' — did you mean 'autoRefresh'?",
    );
    expect(failure({ tokenLimit: 3 })).toBe(
      "KnoxModule: unknown option 'tokenLimit' — did you mean 'tokenLimitPerUser'?",
    );
    expect(failure({ ttl: 3 })).toBe(
      "KnoxModule: unknown option 'ttl' — did you mean 'tokenTtl'?",
    );
    expect(failure({ rotationGracePeriode: 5 })).toBe(
      "KnoxModule: unknown option 'rotationGracePeriode' — did you mean 'rotationGracePeriod'?",
    );
  });

  it('flags a typo even when its value is undefined, and before any other check', () => {
    expect(failure({ tokenTTL: undefined })).toMatch(
      /unknown option 'tokenTTL'/,
    );
    expect(
      failure({ validateUser: undefined, validateuser: validateUser }),
    ).toBe(
      "KnoxModule: unknown option 'validateuser' — did you mean 'validateUser'?",
    );
  });

  it('lists the options when nothing is close', () => {
    const message = failure({ database: 'postgres' });
    expect(message).toMatch(
      /^KnoxModule: unknown option 'database'; the options are 'validateUser', 'tokenFormat', .*'getLoginResponse', 'clock'\.$/,
    );
    for (const key of Object.keys(KNOX_OPTIONS)) {
      expect(message).toContain(`'${key}'`);
    }
  });

  it('checks the keys of loginThrottle too', () => {
    expect(failure({ loginThrottle: { limitPerUser: 5 } })).toBe(
      "KnoxModule: unknown option 'loginThrottle.limitPerUser' — did you mean 'loginThrottle.limitPerUsername'?",
    );
    expect(failure({ loginThrottle: { maxkeys: 5 } })).toBe(
      "KnoxModule: unknown option 'loginThrottle.maxkeys' — did you mean 'loginThrottle.maxKeys'?",
    );
  });

  it('explains that a module setting returned by an async factory belongs beside useFactory', () => {
    expect(failure({ userEntity: class User {} })).toBe(
      'KnoxModule: `userEntity` is a module setting, not an option: with forRootAsync, give it to forRootAsync() itself, beside useFactory (e.g. KnoxModule.forRootAsync({ userEntity: …, useFactory })), not in the options the factory returns.',
    );
    for (const key of ['isGlobal', 'controller', 'path', 'tableName']) {
      expect(failure({ [key]: 'x' })).toMatch(
        new RegExp(`^KnoxModule: \`${key}\` is a module setting`),
      );
    }
    expect(failure({ tablename: 'x' })).toBe(
      "KnoxModule: unknown option 'tablename' — did you mean 'tableName'? `tableName` is a module setting, not an option: with forRootAsync, give it to forRootAsync() itself, beside useFactory (e.g. KnoxModule.forRootAsync({ tableName: …, useFactory })), not in the options the factory returns.",
    );
  });
});

describe('numbers and booleans given as strings', () => {
  it('says what it got and how to convert it', () => {
    expect(failure({ tokenTtl: '3600000' })).toBe(
      "KnoxModule: `tokenTtl` must be a duration in milliseconds (a finite number >= 0) or null; got the string '3600000'. Configuration values are strings: convert it with `Number(...)`, or have a @nestjs/config validation schema convert it (e.g. `Joi.number()`) and read it with `ConfigService.get<number>(…, { infer: true })`.",
    );
    expect(failure({ loginThrottle: { limitPerIp: ' 30 ' } })).toBe(
      "KnoxModule: `loginThrottle.limitPerIp` must be a whole number >= 1; got the string ' 30 '. Configuration values are strings: convert it with `Number(...)`, or have a @nestjs/config validation schema convert it (e.g. `Joi.number()`) and read it with `ConfigService.get<number>(…, { infer: true })`.",
    );
    expect(failure({ rotationGracePeriod: '' })).toBe(
      "KnoxModule: `rotationGracePeriod` must be a duration in milliseconds (a finite number >= 0); got the string ''.",
    );
  });

  it("refuses autoRefresh: 'false' (a truthy string), saying how to convert it", () => {
    expect(failure({ autoRefresh: 'false' })).toBe(
      "KnoxModule: `autoRefresh` must be true or false; got the string 'false'. Configuration values are strings: convert it, e.g. `config.get('…') === 'true'`, or have a @nestjs/config validation schema convert it (e.g. `Joi.boolean()`).",
    );
    expect(failure({ autoRefresh: 1 })).toBe(
      'KnoxModule: `autoRefresh` must be true or false; got 1.',
    );
  });
});

describe('the rest of the table', () => {
  it('resolves loginThrottle with its defaults, the key cap included', () => {
    const resolved = resolveKnoxOptions({ validateUser });
    expect(resolved.loginThrottle).toEqual({
      ttl: 60_000,
      limitPerUsername: 10,
      limitPerIp: 30,
      storage: undefined,
      maxKeys: DEFAULT_LOGIN_THROTTLE_MAX_KEYS,
    });
    expect(DEFAULT_LOGIN_THROTTLE_MAX_KEYS).toBe(100_000);
    expect(
      resolveKnoxOptions({ validateUser, loginThrottle: { maxKeys: 500 } })
        .loginThrottle?.maxKeys,
    ).toBe(500);
    expect(
      resolveKnoxOptions({ validateUser, loginThrottle: false }).loginThrottle,
    ).toBeNull();
  });

  it('refuses a bad key cap, a cap beside a storage of the app, and a storage without increment()', () => {
    expect(failure({ loginThrottle: { maxKeys: 0 } })).toBe(
      'KnoxModule: `loginThrottle.maxKeys` must be a whole number >= 1; got 0.',
    );
    const storage = { increment: async () => ({}) };
    expect(failure({ loginThrottle: { storage, maxKeys: 10 } })).toBe(
      'KnoxModule: `loginThrottle.maxKeys` caps the default in-memory storage; with your own `loginThrottle.storage`, bound the keys there (e.g. a Redis storage expires them).',
    );
    expect(failure({ loginThrottle: { storage: new Map() } })).toBe(
      'KnoxModule: `loginThrottle.storage` must be a @nestjs/throttler `ThrottlerStorage` (an object with `increment()`).',
    );
    expect(failure({ loginThrottle: true })).toBe(
      'KnoxModule: `loginThrottle` must be an object ({ ttl, limitPerUsername, limitPerIp, storage, maxKeys }) or false.',
    );
  });

  it('refuses a clock without now(), and a tokenNameMaxLength over the column', () => {
    expect(failure({ clock: { time: () => new Date() } })).toBe(
      'KnoxModule: `clock` must be a KnoxClock (an object with `now(): Date`).',
    );
    expect(failure({ tokenNameMaxLength: 201 })).toBe(
      "KnoxModule: `tokenNameMaxLength` must be at most 200 (the column's size); got 201.",
    );
  });

  it('gives every row a kind; only validateUser is required', () => {
    const kinds = ['duration', 'count', 'boolean', 'function', 'choice'];
    kinds.push('string', 'list', 'object');
    for (const [name, row] of Object.entries(KNOX_OPTIONS)) {
      expect({ name, kind: kinds.includes(row.kind) }).toEqual({
        name,
        kind: true,
      });
      expect({ name, required: row.required ?? false }).toEqual({
        name,
        required: name === 'validateUser',
      });
    }
  });
});

describe('nearestKey', () => {
  it('measures edits case-insensitively and allows about a third of the key', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
    expect(nearestKey('TOKENTTL', ['tokenTtl', 'tokenPrefix'])).toBe(
      'tokenTtl',
    );
    expect(nearestKey('ttl', ['tokenTtl', 'autoRefreshMaxTtl'])).toBe(
      'tokenTtl',
    );
    expect(nearestKey('prefix', ['tokenPrefix'])).toBe('tokenPrefix');
    expect(nearestKey('tl', ['tokenTtl'])).toBeUndefined();
    expect(nearestKey('database', ['tokenTtl', 'clock'])).toBeUndefined();
  });
});
