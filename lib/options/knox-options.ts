import { DAY, HOUR, MINUTE } from '../knox.constants.js';
import { ABILITY_RULE, isAbility } from '../abilities/knox-abilities.js';
import type { ThrottlerStorage } from '@nestjs/throttler';
import type {
  KnoxLegacyTokenDigest,
  KnoxModuleOptions,
  KnoxTokenFormat,
  KnoxTokenLimitPolicy,
} from './knox-module-options.interface.js';
import { KnoxOptionsError } from './knox-options-error.js';
import {
  TOKEN_FORMATS,
  TOKEN_NAME_COLUMN_LENGTH,
  checkAbilities,
  checkBoolean,
  checkCount,
  checkDuration,
  checkFunction,
  checkTokenLimit,
  checkTokenLimitPolicy,
  checkTokenPrefix,
  checkTokenTtl,
} from './knox-option-checks.js';
import { checkCookie, type ResolvedKnoxCookie } from './knox-cookie-options.js';
import {
  fixed,
  resolveTable,
  type KnoxForeignKeys,
  type KnoxOptionRow,
  type KnoxOptionTable,
} from './knox-option-table.js';
import {
  resolveKnoxCacheOptions,
  type ResolvedKnoxCacheOptions,
} from './knox-cache-options.js';

export * from './knox-option-checks.js';

/** The default cap on the keys of the in-memory login throttle storage. */
export const DEFAULT_LOGIN_THROTTLE_MAX_KEYS = 100_000;

/** Options with every default applied; what the module's parts read. */
export interface ResolvedKnoxOptions
  extends
    Required<
      Pick<KnoxModuleOptions, 'validateUser' | 'isUserActive' | 'formatExpiry'>
    >,
    Pick<
      KnoxModuleOptions,
      | 'serializeUser'
      | 'getTokenTtl'
      | 'getTokenPrefix'
      | 'getTokenLimitPerUser'
      | 'getLoginResponse'
      | 'getTokenAbilities'
      | 'clock'
    > {
  raw: KnoxModuleOptions;
  tokenTtl: number | null;
  tokenLimitPerUser: number | null;
  tokenLimitPolicy: KnoxTokenLimitPolicy;
  autoRefresh: boolean;
  autoRefreshMaxTtl: number | null;
  minRefreshInterval: number;
  lastUsedUpdateInterval: number;
  authSchemes: string[];
  tokenPrefix: string;
  tokenCharacterLength: number;
  tokenFormat: KnoxTokenFormat;
  tokenNameMaxLength: number;
  rotationGracePeriod: number;
  /** Digests of earlier hashing schemes, tried after the current one; empty for none. */
  legacyTokenDigests: readonly KnoxLegacyTokenDigest[];
  /** What a login body may ask for in `abilities`; `null`: a login may not carry `abilities`. */
  loginAbilities: string[] | null;
  /** `POST {path}/tokens`; `null` when turned off. */
  personalAccessTokens: {
    maxTtl: number | null;
    createAbility: string | null;
  } | null;
  /** The username `validateUser` is given when a user re-authenticates. */
  getUsername: (user: unknown) => unknown;
  loginThrottle: {
    ttl: number;
    limitPerUsername: number;
    limitPerIp: number;
    /** The app's storage; the default in-memory one when absent. */
    storage?: ThrottlerStorage;
    /** The cap on the keys of the default in-memory storage. */
    maxKeys: number;
  } | null;
  /** The cache's settings; `null` when it is off (the default). */
  cache: ResolvedKnoxCacheOptions | null;
  /** The cookie transport, or `null` when it is off. */
  cookie: ResolvedKnoxCookie | null;
}

/** A duration in ms; `fallback` is the default (or computes it from earlier options). */
function duration(
  fallback: number | null | ((r: Record<string, unknown>) => unknown),
  nullable = false,
): KnoxOptionRow {
  return {
    kind: 'duration',
    fallback: typeof fallback === 'function' ? fallback : fixed(fallback),
    check: (value, _r, name) => checkDuration(name, value, nullable),
  };
}

/** A whole number >= 1, then `more` for an option's own bounds. */
function count(
  fallback: number,
  more: (value: number, name: string) => void = () => undefined,
): KnoxOptionRow {
  return {
    kind: 'count',
    fallback: fixed(fallback),
    check: (value, _r, name) => {
      const checked = checkCount(name, value, false) as number;
      more(checked, name);
      return checked;
    },
  };
}

/** A hook; `fallback` is the function used when it is missing. */
function hook(fallback?: (...args: never[]) => unknown): KnoxOptionRow {
  return {
    kind: 'function',
    fallback: fixed(fallback),
    check: (value, _r, name) => checkFunction(name, value),
  };
}

function defaultIsUserActive(user: unknown): boolean {
  if (!user || typeof user !== 'object') {
    return false;
  }
  const record = user as Record<string, unknown>;
  return record.isActive !== false && record.is_active !== false;
}

const AUTH_SCHEME = /^[!#-'*+.^-z|~0-9A-Za-z-]+$/;

function checkAuthSchemes(value: unknown): string[] {
  const schemes = Array.isArray(value) ? value : [value];
  if (
    schemes.length === 0 ||
    schemes.some((s) => typeof s !== 'string' || !AUTH_SCHEME.test(s))
  ) {
    throw new KnoxOptionsError(
      '`authHeaderPrefix` must be a scheme name (e.g. "Token") or a non-empty list of them, without spaces.',
    );
  }
  return schemes as string[];
}

function checkLegacyDigests(value: unknown): KnoxLegacyTokenDigest[] {
  if (value === null) {
    return [];
  }
  const what =
    '`legacyTokenDigests` must be an array of functions `(token) => digest`';
  if (!Array.isArray(value)) {
    throw new KnoxOptionsError(`${what}.`);
  }
  value.forEach((digest: unknown, index) => {
    if (typeof digest !== 'function') {
      throw new KnoxOptionsError(
        `${what}; item ${index} is ${digest === null ? 'null' : typeof digest}.`,
      );
    }
  });
  return [...(value as KnoxLegacyTokenDigest[])];
}

/** The rows of `loginThrottle: { … }`. */
export const LOGIN_THROTTLE_OPTIONS: KnoxOptionTable = {
  ttl: count(MINUTE),
  limitPerUsername: count(10),
  limitPerIp: count(30),
  storage: {
    kind: 'object',
    check: (value) => {
      if (typeof (value as ThrottlerStorage | null)?.increment !== 'function') {
        throw new KnoxOptionsError(
          '`loginThrottle.storage` must be a @nestjs/throttler `ThrottlerStorage` (an object with `increment()`).',
        );
      }
      return value;
    },
  },
  maxKeys: {
    kind: 'count',
    fallback: fixed(DEFAULT_LOGIN_THROTTLE_MAX_KEYS),
    check: (value, resolved, name) => {
      if (resolved.storage !== undefined) {
        throw new KnoxOptionsError(
          '`loginThrottle.maxKeys` caps the default in-memory storage; with your own `loginThrottle.storage`, bound the keys there (e.g. a Redis storage expires them).',
        );
      }
      return checkCount(name, value, false);
    },
  },
};

/** The rows of `personalAccessTokens: { … }`. */
export const PERSONAL_ACCESS_TOKEN_OPTIONS: KnoxOptionTable = {
  maxTtl: {
    kind: 'duration',
    fallback: fixed(365 * DAY),
    check: (value, _r, name) => {
      if (value === null) {
        return null;
      }
      const ttl = checkDuration(name, value, true) as number;
      if (ttl < 1) {
        throw new KnoxOptionsError(
          `\`${name}\` must be at least 1 ms, or null for no cap; got ${ttl}.`,
        );
      }
      if (Number.isNaN(new Date(Date.now() + ttl).getTime())) {
        throw new KnoxOptionsError(
          `\`${name}\` of ${ttl} ms puts the expiry past the largest date JavaScript can hold; use null for no cap.`,
        );
      }
      return ttl;
    },
  },
  createAbility: {
    kind: 'string',
    fallback: fixed(null),
    check: (value, _r, name) => {
      if (value === null) {
        return null;
      }
      if (!isAbility(value) || value.includes('*')) {
        throw new KnoxOptionsError(
          `\`${name}\` must be one ability without wildcard (e.g. 'tokens:create'), or null; got ${JSON.stringify(value)}. An ability is ${ABILITY_RULE}.`,
        );
      }
      return value;
    },
  },
};

function checkPersonalAccessTokens(value: unknown): unknown {
  return resolveNested(
    value,
    'personalAccessTokens',
    PERSONAL_ACCESS_TOKEN_OPTIONS,
  );
}

function defaultGetUsername(user: unknown): unknown {
  const record = (user ?? {}) as Record<string, unknown>;
  return record.username ?? record.email;
}

function checkLoginThrottle(value: unknown): unknown {
  return resolveNested(value, 'loginThrottle', LOGIN_THROTTLE_OPTIONS);
}

/**
 * An option that is a table of its own (`loginThrottle: { … }`): `false` turns it off (`null`),
 * an object is checked row by row against `table`, anything else is refused naming its keys.
 */
function resolveNested(
  value: unknown,
  name: string,
  table: KnoxOptionTable,
): unknown {
  if (value === false) {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new KnoxOptionsError(
      `\`${name}\` must be an object ({ ${Object.keys(table).join(', ')} }) or false.`,
    );
  }
  return resolveTable(table, value as Record<string, unknown>, `${name}.`);
}

/**
 * Every option of {@link KnoxModuleOptions}: its kind, its default and its check, in the order
 * they are checked. `resolveKnoxOptions` runs it at boot; the per-call values of
 * `KnoxTokenService` go through the same `check…` functions (`knox-option-checks.ts`).
 */
export const KNOX_OPTIONS: KnoxOptionTable = {
  validateUser: {
    kind: 'function',
    required: true,
    check: (value) => {
      if (typeof value !== 'function') {
        throw new KnoxOptionsError(
          '`validateUser(username, password, request)` is required: it checks credentials at login and returns the user or null.',
        );
      }
      return value;
    },
  },
  tokenFormat: {
    kind: 'choice',
    fallback: fixed('knox'),
    check: (value) => {
      if (!TOKEN_FORMATS.includes(value as KnoxTokenFormat)) {
        throw new KnoxOptionsError(
          `\`tokenFormat\` must be 'knox' or 'checksum'; got ${String(value)}.`,
        );
      }
      return value;
    },
  },
  tokenPrefix: {
    kind: 'string',
    fallback: (r) => (r.tokenFormat === 'checksum' ? 'knox_' : ''),
    check: (value, r) =>
      checkTokenPrefix(value, r.tokenFormat as KnoxTokenFormat, 'boot'),
  },
  tokenCharacterLength: count(64, (value) => {
    if (value % 2 !== 0 || value < 32) {
      throw new KnoxOptionsError(
        `\`tokenCharacterLength\` must be even and at least 32 (128 bits); got ${value}.`,
      );
    }
  }),
  authHeaderPrefix: {
    kind: 'list',
    into: 'authSchemes',
    fallback: () => ['Token', 'Bearer'],
    check: checkAuthSchemes,
  },
  tokenTtl: {
    kind: 'duration',
    fallback: fixed(10 * HOUR),
    check: (value) => checkTokenTtl(value, 'boot'),
  },
  tokenLimitPerUser: {
    kind: 'count',
    fallback: fixed(null),
    check: (value) => checkTokenLimit(value, 'boot'),
  },
  tokenLimitPolicy: {
    kind: 'choice',
    fallback: fixed('reject'),
    check: (value) => checkTokenLimitPolicy(value, 'boot'),
  },
  autoRefresh: {
    kind: 'boolean',
    fallback: fixed(false),
    check: (value, _r, name) => checkBoolean(name, value),
  },
  autoRefreshMaxTtl: duration(null, true),
  minRefreshInterval: duration(MINUTE),
  lastUsedUpdateInterval: duration((r) => r.minRefreshInterval),
  rotationGracePeriod: duration(0),
  tokenNameMaxLength: count(100, (value) => {
    if (value > TOKEN_NAME_COLUMN_LENGTH) {
      throw new KnoxOptionsError(
        `\`tokenNameMaxLength\` must be at most ${TOKEN_NAME_COLUMN_LENGTH} (the column's size); got ${value}.`,
      );
    }
  }),
  legacyTokenDigests: {
    kind: 'list',
    fallback: () => [],
    check: checkLegacyDigests,
  },
  loginThrottle: {
    kind: 'object',
    fallback: () => checkLoginThrottle({}),
    check: checkLoginThrottle,
  },
  cache: {
    kind: 'object',
    fallback: () => null,
    check: (value) => resolveKnoxCacheOptions(value),
  },
  loginAbilities: {
    kind: 'list',
    fallback: fixed(null),
    check: (value, _r, name) => checkAbilities(value, 'boot', name),
  },
  personalAccessTokens: {
    kind: 'object',
    fallback: () => checkPersonalAccessTokens({}),
    check: checkPersonalAccessTokens,
  },
  cookie: {
    kind: 'object',
    fallback: fixed(null),
    check: checkCookie,
  },
  // The hooks come last: a key that is not an option is matched to the values first.
  isUserActive: hook(defaultIsUserActive),
  formatExpiry: hook((d: Date) => d.toISOString()),
  serializeUser: hook(),
  getTokenTtl: hook(),
  getTokenPrefix: hook(),
  getTokenLimitPerUser: hook(),
  getTokenAbilities: hook(),
  getUsername: hook(defaultGetUsername),
  getLoginResponse: hook(),
  clock: {
    kind: 'object',
    check: (value) => {
      if (typeof (value as { now?: unknown } | null)?.now !== 'function') {
        throw new KnoxOptionsError(
          '`clock` must be a KnoxClock (an object with `now(): Date`).',
        );
      }
      return value;
    },
  },
};

/**
 * The settings `forRoot` / `forRootAsync` take beside the options (`KnoxModuleExtras`): they
 * never reach the options, except when an async factory returns them by mistake.
 */
export const KNOX_EXTRAS_KEYS: readonly string[] = [
  'userEntity',
  'isGlobal',
  'controller',
  'path',
  'tableName',
  'dataSource',
  'schema',
];

const EXTRAS: KnoxForeignKeys = {
  keys: KNOX_EXTRAS_KEYS,
  explain: (key) =>
    `\`${key}\` is a module setting, not an option: with forRootAsync, give it to forRootAsync() itself, beside useFactory (e.g. KnoxModule.forRootAsync({ ${key}: …, useFactory })), not in the options the factory returns.`,
};

/** Applies the defaults to the options and validates them (unknown keys included). */
export function resolveKnoxOptions(
  options: KnoxModuleOptions | undefined,
): ResolvedKnoxOptions {
  if (!options || typeof options !== 'object') {
    throw new KnoxOptionsError(
      'options are missing: pass at least `{ validateUser }` to forRoot() or return it from forRootAsync()’s factory.',
    );
  }
  const resolved = resolveTable(
    KNOX_OPTIONS,
    options as unknown as Record<string, unknown>,
    '',
    EXTRAS,
  );
  return { ...resolved, raw: options } as unknown as ResolvedKnoxOptions;
}
