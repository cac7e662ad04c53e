import { randomUUID } from 'node:crypto';
import { MAXIMUM_TOKEN_PREFIX_LENGTH } from '../knox.constants.js';
import type { KnoxClientInfo, KnoxTokenSource } from '../events/knox.events.js';
import type { KnoxTokenLimitPolicy } from '../options/knox-module-options.interface.js';
import {
  checkAbilities,
  checkTokenLimit,
  checkTokenLimitPolicy,
  checkTokenName,
  checkTokenPrefix,
  checkTokenTtl,
  type ResolvedKnoxOptions,
} from '../options/knox-options.js';
import { KnoxToken } from '../store/knox-token.entity.js';
import {
  digestToken,
  generateToken,
  isChecksumPrefix,
  tokenKeyOf,
} from '../tokens/knox-token-format.js';

/** Options of {@link KnoxTokenService.create}; unset ones fall back to the module's options. */
export interface KnoxCreateTokenOptions extends Partial<KnoxClientInfo> {
  /** Lifetime in ms; `null` never expires. */
  ttl?: number | null;
  /**
   * The latest expiry the token may ever reach: its expiry is at most this (a token asked with
   * no TTL expires then), and refresh, auto refresh and rotation stop there (a rotation hands it
   * to the successor). Stored as `max_expiry`. `POST {path}/tokens` sets it to
   * `created + personalAccessTokens.maxTtl`. A valid `Date` not before now, or `null` (the
   * default) for no cap of the token's own.
   */
  maxExpiry?: Date | null;
  /** Token prefix (at most 10 characters). */
  prefix?: string;
  /** A name for the token, e.g. the device. */
  name?: string | null;
  /** Live-token limit for this user; `null` for none. */
  limit?: number | null;
  /** What to do when the limit is reached. */
  policy?: KnoxTokenLimitPolicy;
  /**
   * What the token may do (see docs/abilities.md): a list of abilities, or `null` (the
   * default) for every ability.
   */
  abilities?: string[] | null;
  /**
   * The token the request was authenticated with, when a user creates a token for themselves:
   * the call is refused (401) when that token has been retired by a rotation, revoked or has
   * expired by the time the user's lock is taken.
   */
  actor?: KnoxToken;
  /**
   * What is issuing the token, for the events: `'app'` (the default) emits only
   * `KnoxEvents.TOKEN_CREATED`; `'login'` (a login route of the app's own) also emits
   * `KnoxEvents.LOGIN`. (`'personal-access-token'` is what `POST {path}/tokens` gives.)
   *
   * @default 'app'
   */
  source?: Exclude<KnoxTokenSource, 'rotate'>;
}

/** A newly issued token: the plaintext (shown once) and its stored record. */
export interface KnoxIssuedToken<User = any> {
  /** The plaintext token. Give it to the client; it is stored nowhere. */
  token: string;
  /** The stored record (digest only). */
  record: KnoxToken<User>;
}

/** The limit and policy a `create` call runs under; throws for values the options refuse. */
export function limitOf(
  options: KnoxCreateTokenOptions,
  resolved: ResolvedKnoxOptions,
): { limit: number | null; policy: KnoxTokenLimitPolicy } {
  const limit =
    options.limit !== undefined ? options.limit : resolved.tokenLimitPerUser;
  return {
    limit: checkTokenLimit(limit, 'service'),
    policy: checkTokenLimitPolicy(
      options.policy ?? resolved.tokenLimitPolicy,
      'service',
    ),
  };
}

/**
 * A new token and its record (not stored yet) for the user with primary key reference `user`,
 * issued at `now`. Throws for a TTL, prefix or name the options would refuse.
 */
export function newToken(
  user: Record<string, unknown>,
  now: Date,
  options: KnoxCreateTokenOptions,
  resolved: ResolvedKnoxOptions,
): KnoxIssuedToken {
  const settings = checkedTokenSettings(now, options, resolved);
  const token = generateToken(
    resolved.tokenFormat,
    settings.prefix,
    resolved.tokenCharacterLength,
  );
  return { token, record: tokenRecord(token, user, now, settings, options) };
}

/** What a `create` call asks for, each falling back to the module's option, then checked. */
function checkedTokenSettings(
  now: Date,
  options: KnoxCreateTokenOptions,
  resolved: ResolvedKnoxOptions,
) {
  const ttl = checkTokenTtl(
    options.ttl !== undefined ? options.ttl : resolved.tokenTtl,
    'service',
    now.getTime(),
  );
  const prefix = checkTokenPrefix(
    options.prefix ?? resolved.tokenPrefix,
    resolved.tokenFormat,
    'service',
  );
  const name = checkTokenName(options.name ?? null);
  const abilities = checkAbilities(options.abilities ?? null, 'service');
  const maxExpiry = checkMaxExpiry(options.maxExpiry ?? null, now);
  return { ttl, prefix, name, abilities, maxExpiry };
}

/** `create({ maxExpiry })`: a valid `Date` not before `now`, or `null`. */
function checkMaxExpiry(value: unknown, now: Date): Date | null {
  if (value === null) {
    return null;
  }
  if (
    !(value instanceof Date) ||
    Number.isNaN(value.getTime()) ||
    value.getTime() < now.getTime()
  ) {
    throw new Error(
      `KnoxTokenService: \`maxExpiry\` must be a valid Date not before now, or null (no cap); got ${String(value)}.`,
    );
  }
  return value;
}

/** The stored record of `token`: its digest, never the token itself. */
function tokenRecord(
  token: string,
  user: Record<string, unknown>,
  now: Date,
  { ttl, name, abilities, maxExpiry }: ReturnType<typeof checkedTokenSettings>,
  options: KnoxCreateTokenOptions,
): KnoxToken {
  let expiry = ttl === null ? null : new Date(now.getTime() + ttl);
  if (maxExpiry && (expiry === null || expiry > maxExpiry)) {
    expiry = maxExpiry;
  }
  return Object.assign(new KnoxToken(), {
    digest: digestToken(token),
    tokenKey: tokenKeyOf(token),
    id: randomUUID(),
    user,
    created: now,
    expiry,
    ttl,
    name,
    userAgent: options.userAgent?.slice(0, 512) ?? null,
    ip: options.ip?.slice(0, 45) ?? null,
    // Login is a use; it also puts last use and expiry in the same phase, so the two writes
    // a request may cause (last use, auto refresh) fall due together.
    lastUsedAt: now,
    lastUsedIp: options.ip?.slice(0, 45) ?? null,
    retiredAt: null,
    abilities,
    maxExpiry,
  });
}

/**
 * The prefix a rotated token gets: the one the client presented when the app issues several
 * (`getTokenPrefix`) and it suits the current format, else the configured one.
 */
export function rotatedPrefix(
  presented: string | undefined,
  resolved: ResolvedKnoxOptions,
): string {
  const configured = resolved.tokenPrefix;
  if (
    presented === undefined ||
    presented === configured ||
    !resolved.raw.getTokenPrefix
  ) {
    return configured;
  }
  const suits =
    resolved.tokenFormat === 'checksum'
      ? isChecksumPrefix(presented, MAXIMUM_TOKEN_PREFIX_LENGTH)
      : presented.length <= MAXIMUM_TOKEN_PREFIX_LENGTH;
  return suits ? presented : configured;
}
