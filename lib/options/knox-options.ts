import { HOUR, MINUTE } from '../knox.constants.js';
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
  checkTokenLimit,
  checkTokenLimitPolicy,
  checkTokenPrefix,
  checkTokenTtl,
} from './knox-option-checks.js';
import { checkCookie, type ResolvedKnoxCookie } from './knox-cookie-options.js';
import {
  count,
  duration,
  fixed,
  hook,
  resolveTable,
  type KnoxForeignKeys,
  type KnoxOptionTable,
} from './knox-option-table.js';
import { checkAdmin, type ResolvedKnoxAdmin } from './knox-admin-options.js';
import {
  checkLoginThrottle,
  type ResolvedKnoxLoginThrottle,
} from './knox-login-throttle-options.js';
import {
  checkPersonalAccessTokens,
  type ResolvedKnoxPersonalAccessTokens,
} from './knox-personal-token-options.js';
import {
  resolveKnoxCacheOptions,
  type ResolvedKnoxCacheOptions,
} from './knox-cache-options.js';

export * from './knox-option-checks.js';

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
  personalAccessTokens: ResolvedKnoxPersonalAccessTokens | null;
  /** The username `validateUser` is given when a user re-authenticates. */
  getUsername: (user: unknown) => unknown;
  /** Login throttling; `null` when turned off. */
  loginThrottle: ResolvedKnoxLoginThrottle | null;
  /** The cache's settings; `null` when it is off (the default). */
  cache: ResolvedKnoxCacheOptions | null;
  /** The cookie transport, or `null` when it is off. */
  cookie: ResolvedKnoxCookie | null;
  /** The token admin (`{path}/admin`), or `null` when it is off (the default). */
  admin: ResolvedKnoxAdmin | null;
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

function defaultGetUsername(user: unknown): unknown {
  const record = (user ?? {}) as Record<string, unknown>;
  return record.username ?? record.email;
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
  admin: {
    kind: 'object',
    fallback: fixed(null),
    check: checkAdmin,
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
