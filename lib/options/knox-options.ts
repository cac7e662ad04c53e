import {
  HOUR,
  MAXIMUM_TOKEN_PREFIX_LENGTH,
  MINUTE,
} from '../knox.constants.js';
import type {
  KnoxLegacyTokenDigest,
  KnoxModuleOptions,
  KnoxTokenFormat,
  KnoxTokenLimitPolicy,
} from './knox-module-options.interface.js';
import type { ThrottlerStorage } from '@nestjs/throttler';

/** Options with every default applied; what the module's parts read. */
export interface ResolvedKnoxOptions extends Required<
  Pick<KnoxModuleOptions, 'validateUser' | 'isUserActive' | 'formatExpiry'>
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
  loginThrottle: {
    ttl: number;
    limitPerUsername: number;
    limitPerIp: number;
    storage?: ThrottlerStorage;
  } | null;
}

/** Thrown at boot when an option is wrong; the message says what to fix. */
export class KnoxOptionsError extends Error {
  constructor(message: string) {
    super(`KnoxModule: ${message}`);
    this.name = 'KnoxOptionsError';
  }
}

/** The token limit policies, as `tokenLimitPolicy` accepts them. */
export const POLICIES: readonly KnoxTokenLimitPolicy[] = [
  'reject',
  'evict-oldest',
  'evict-least-recently-used',
];

function duration(
  name: string,
  value: unknown,
  fallback: number | null,
  nullable: boolean,
): number | null {
  if (value === undefined) {
    return fallback;
  }
  if (value === null && nullable) {
    return null;
  }
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new KnoxOptionsError(
      `\`${name}\` must be a duration in milliseconds (a finite number >= 0)${nullable ? ' or null' : ''}; got ${String(value)}.`,
    );
  }
  return value;
}

function positiveInteger(
  name: string,
  value: unknown,
  fallback: number | null,
  nullable: boolean,
): number | null {
  if (value === undefined) {
    return fallback;
  }
  if (value === null && nullable) {
    return null;
  }
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new KnoxOptionsError(
      `\`${name}\` must be a whole number >= 1${nullable ? ' or null' : ''}; got ${String(value)}.`,
    );
  }
  return value;
}

function defaultIsUserActive(user: unknown): boolean {
  if (!user || typeof user !== 'object') {
    return false;
  }
  const record = user as Record<string, unknown>;
  return record.isActive !== false && record.is_active !== false;
}

/** Applies the defaults to the options and validates them. */
export function resolveKnoxOptions(
  options: KnoxModuleOptions | undefined,
): ResolvedKnoxOptions {
  if (!options || typeof options !== 'object') {
    throw new KnoxOptionsError(
      'options are missing: pass at least `{ validateUser }` to forRoot() or return it from forRootAsync()’s factory.',
    );
  }
  if (typeof options.validateUser !== 'function') {
    throw new KnoxOptionsError(
      '`validateUser(username, password, request)` is required: it checks credentials at login and returns the user or null.',
    );
  }
  for (const hook of [
    'isUserActive',
    'formatExpiry',
    'serializeUser',
    'getTokenTtl',
    'getTokenPrefix',
    'getTokenLimitPerUser',
    'getLoginResponse',
  ] as const) {
    if (options[hook] !== undefined && typeof options[hook] !== 'function') {
      throw new KnoxOptionsError(`\`${hook}\` must be a function.`);
    }
  }

  const tokenFormat = options.tokenFormat ?? 'knox';
  if (tokenFormat !== 'knox' && tokenFormat !== 'checksum') {
    throw new KnoxOptionsError(
      `\`tokenFormat\` must be 'knox' or 'checksum'; got ${String(tokenFormat)}.`,
    );
  }
  const tokenPrefix =
    options.tokenPrefix ?? (tokenFormat === 'checksum' ? 'knox_' : '');
  if (typeof tokenPrefix !== 'string') {
    throw new KnoxOptionsError('`tokenPrefix` must be a string.');
  }
  if (tokenPrefix.length > MAXIMUM_TOKEN_PREFIX_LENGTH) {
    throw new KnoxOptionsError(
      `\`tokenPrefix\` must be at most ${MAXIMUM_TOKEN_PREFIX_LENGTH} characters; '${tokenPrefix}' has ${tokenPrefix.length}.`,
    );
  }
  if (!/^[\x21-\x7e]*$/.test(tokenPrefix)) {
    throw new KnoxOptionsError(
      '`tokenPrefix` may only contain printable ASCII characters without spaces.',
    );
  }
  if (
    tokenFormat === 'checksum' &&
    (tokenPrefix.length < 4 || !tokenPrefix.endsWith('_'))
  ) {
    throw new KnoxOptionsError(
      `with \`tokenFormat: 'checksum'\`, \`tokenPrefix\` must be at least 4 characters and end in '_' (e.g. 'myapp_'); got '${tokenPrefix}'.`,
    );
  }
  const tokenCharacterLength = positiveInteger(
    'tokenCharacterLength',
    options.tokenCharacterLength,
    64,
    false,
  ) as number;
  if (tokenCharacterLength % 2 !== 0 || tokenCharacterLength < 32) {
    throw new KnoxOptionsError(
      `\`tokenCharacterLength\` must be even and at least 32 (128 bits); got ${tokenCharacterLength}.`,
    );
  }

  const schemes = options.authHeaderPrefix ?? ['Token', 'Bearer'];
  const authSchemes = Array.isArray(schemes) ? schemes : [schemes];
  if (
    authSchemes.length === 0 ||
    authSchemes.some(
      (s) => typeof s !== 'string' || !/^[!#-'*+.^-z|~0-9A-Za-z-]+$/.test(s),
    )
  ) {
    throw new KnoxOptionsError(
      '`authHeaderPrefix` must be a scheme name (e.g. "Token") or a non-empty list of them, without spaces.',
    );
  }

  const policy = options.tokenLimitPolicy ?? 'reject';
  if (!POLICIES.includes(policy)) {
    throw new KnoxOptionsError(
      `\`tokenLimitPolicy\` must be one of ${POLICIES.map((p) => `'${p}'`).join(', ')}; got ${String(policy)}.`,
    );
  }

  const minRefreshInterval = duration(
    'minRefreshInterval',
    options.minRefreshInterval,
    MINUTE,
    false,
  ) as number;

  let loginThrottle: ResolvedKnoxOptions['loginThrottle'] = null;
  if (options.loginThrottle !== false) {
    const t = options.loginThrottle ?? {};
    if (typeof t !== 'object' || t === null) {
      throw new KnoxOptionsError(
        '`loginThrottle` must be an object ({ ttl, limitPerUsername, limitPerIp, storage }) or false.',
      );
    }
    loginThrottle = {
      ttl: positiveInteger('loginThrottle.ttl', t.ttl, MINUTE, false) as number,
      limitPerUsername: positiveInteger(
        'loginThrottle.limitPerUsername',
        t.limitPerUsername,
        10,
        false,
      ) as number,
      limitPerIp: positiveInteger(
        'loginThrottle.limitPerIp',
        t.limitPerIp,
        30,
        false,
      ) as number,
      storage: t.storage,
    };
  }

  const tokenNameMaxLength = positiveInteger(
    'tokenNameMaxLength',
    options.tokenNameMaxLength,
    100,
    false,
  ) as number;
  if (tokenNameMaxLength > 200) {
    throw new KnoxOptionsError(
      `\`tokenNameMaxLength\` must be at most 200 (the column's size); got ${tokenNameMaxLength}.`,
    );
  }

  const legacyTokenDigests = options.legacyTokenDigests ?? [];
  if (!Array.isArray(legacyTokenDigests)) {
    throw new KnoxOptionsError(
      '`legacyTokenDigests` must be an array of functions `(token) => digest`.',
    );
  }
  legacyTokenDigests.forEach((digest: unknown, index) => {
    if (typeof digest !== 'function') {
      throw new KnoxOptionsError(
        `\`legacyTokenDigests\` must be an array of functions \`(token) => digest\`; item ${index} is ${digest === null ? 'null' : typeof digest}.`,
      );
    }
  });

  return {
    raw: options,
    validateUser: options.validateUser,
    isUserActive: options.isUserActive ?? defaultIsUserActive,
    formatExpiry: options.formatExpiry ?? ((d: Date) => d.toISOString()),
    tokenTtl: duration('tokenTtl', options.tokenTtl, 10 * HOUR, true),
    tokenLimitPerUser: positiveInteger(
      'tokenLimitPerUser',
      options.tokenLimitPerUser,
      null,
      true,
    ),
    tokenLimitPolicy: policy,
    autoRefresh: options.autoRefresh ?? false,
    autoRefreshMaxTtl: duration(
      'autoRefreshMaxTtl',
      options.autoRefreshMaxTtl,
      null,
      true,
    ),
    minRefreshInterval,
    lastUsedUpdateInterval: duration(
      'lastUsedUpdateInterval',
      options.lastUsedUpdateInterval,
      minRefreshInterval,
      false,
    ) as number,
    authSchemes,
    tokenPrefix,
    tokenCharacterLength,
    tokenFormat,
    tokenNameMaxLength,
    rotationGracePeriod: duration(
      'rotationGracePeriod',
      options.rotationGracePeriod,
      0,
      false,
    ) as number,
    legacyTokenDigests: [...legacyTokenDigests],
    loginThrottle,
  };
}
