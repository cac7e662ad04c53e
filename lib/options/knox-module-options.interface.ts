import type { ThrottlerStorage } from '@nestjs/throttler';
import type { KnoxCacheOptions } from './knox-cache-options.js';
import type { KnoxCookieOptions } from './knox-cookie-options.js';
import type {
  KnoxTokenFormat,
  KnoxTokenLimitPolicy,
} from './knox-option-checks.js';
import type { KnoxClock } from '../knox-clock.js';
import type { KnoxRequest } from '../knox-request.js';
import type { KnoxStoreSettings } from '../store/knox-store-settings.js';

// The token shape and limit policy choices live beside their checks.
export type { KnoxTokenFormat, KnoxTokenLimitPolicy };

/**
 * Computes the digest an earlier hashing scheme stored for a plaintext token, or returns `null`
 * (or `undefined`) for a token that scheme never issued. See
 * {@link KnoxModuleOptions.legacyTokenDigests}.
 */
export type KnoxLegacyTokenDigest = (
  token: string,
) => string | null | undefined;

/** What the per-login hooks are given. */
export interface KnoxLoginContext<User = any> {
  /** The user whose credentials were just checked. */
  user: User;
  /** The login request. */
  request: KnoxRequest;
  /** The parsed JSON body of the login request (`{}` when there was none). */
  body: Record<string, unknown>;
}

/** What {@link KnoxModuleOptions.getTokenAbilities} is given. */
export interface KnoxAbilitiesContext<
  User = any,
> extends KnoxLoginContext<User> {
  /**
   * The abilities the login body asked for (checked against `loginAbilities`), or `undefined`
   * when it asked for none.
   */
  requestedAbilities: string[] | undefined;
}

/** The login response body before {@link KnoxModuleOptions.getLoginResponse} reshapes it. */
export interface KnoxLoginResponse {
  /** The expiry, formatted by `formatExpiry`, or `null` for a token that never expires. */
  expiry: string | number | null;
  /**
   * The token in plaintext. This is the only time it is ever shown. Absent when the cookie
   * transport is on (`cookie`): the token is then in the `Set-Cookie` header only.
   */
  token?: string;
  /** The new token's public id (as `GET {path}/tokens` lists it), so a client knows its session. */
  id: string;
  /** The user, when `serializeUser` is set. */
  user?: unknown;
}

/**
 * Login throttling: attempts counted per username (case-insensitive) and per client IP within a
 * sliding window, in a `@nestjs/throttler` storage. Every attempt that reaches `validateUser`
 * counts, successful ones too: the counter is taken before the password is checked, so a burst
 * of parallel guesses cannot slip through while slow password hashes run. Past a limit the
 * login answers 429 with `Retry-After` (seconds) for `ttl`. The client IP is Express's or
 * Fastify's `request.ip`: behind a proxy, enable `trust proxy` or every client shares the
 * proxy's address.
 */
export interface KnoxLoginThrottleOptions {
  /**
   * Length of the counting window, in milliseconds.
   * @default 60000
   */
  ttl?: number;
  /**
   * Attempts allowed per username (case-insensitive) within the window.
   * @default 10
   */
  limitPerUsername?: number;
  /**
   * Attempts allowed per client IP within the window.
   * @default 30
   */
  limitPerIp?: number;
  /**
   * Where the counters live; any `@nestjs/throttler` storage (e.g. a Redis one for several instances).
   * @default an in-memory storage that counts as `@nestjs/throttler`'s `ThrottlerStorageService`
   *   does, holding at most `maxKeys` counters
   */
  storage?: ThrottlerStorage;

  /**
   * The most counters (one per client IP, one per username) the default in-memory storage
   * holds. Past it, the counters counted least recently are dropped first, so a spray of
   * distinct usernames or addresses cannot grow memory without bound (100 000 counters take
   * about 40 MB of heap). An evicted counter starts again from zero. Only for the default
   * storage: with `storage`, bound the keys there.
   * @default 100000
   */
  maxKeys?: number;
}

/**
 * `POST {path}/tokens`: personal access tokens (named tokens with chosen abilities, for CLIs,
 * CI and integrations). Creating one needs the account password again in the body, or, when
 * `createAbility` is set, a calling token that names that ability explicitly.
 */
export interface KnoxPersonalAccessTokenOptions {
  /**
   * The longest lifetime a personal access token may be given, in ms (a request asking for more
   * is answered 400); also the lifetime of one created without `ttl`. `null`: no cap, and a token
   * created without `ttl` (or with `ttl: null`) never expires.
   * @default 31536000000 (365 days)
   */
  maxTtl?: number | null;
  /**
   * An ability (e.g. `'tokens:create'`) that lets a token create tokens without the password.
   * Only a token that lists this ability by name qualifies: `'*'`, `ns:*` and tokens with every
   * ability (`null`) do not, so login tokens never mint tokens unless the app gave them the
   * ability. `null` keeps creation behind the password.
   * @default null
   */
  createAbility?: string | null;
}

/**
 * Options of {@link KnoxModule}. Durations are in milliseconds. Defaults are django-rest-knox's.
 */
export interface KnoxModuleOptions<User = any> {
  /**
   * Checks a username and password and returns the user, or `null` when they do not match.
   * The module never stores or hashes passwords: this is where the app checks them.
   * An unknown user and a wrong password get the same answer.
   */
  validateUser(
    username: string,
    password: string,
    request: KnoxRequest,
  ): Promise<User | null | undefined> | User | null | undefined;

  /**
   * Whether the user may authenticate. An inactive user gets 401 "User inactive or deleted.".
   * @default `user.isActive !== false && user.is_active !== false`
   */
  isUserActive?(user: User): boolean;

  /**
   * Lifetime of a new token, in milliseconds; `null` issues tokens that never expire.
   * @default 36000000 (10 hours)
   */
  tokenTtl?: number | null;

  /**
   * The most live tokens (expired ones do not count, never-expiring ones do) a user may hold;
   * `null` for no limit. Enforced atomically, also under concurrent logins.
   * @default null
   */
  tokenLimitPerUser?: number | null;

  /**
   * What to do when the limit is reached.
   * @default 'reject'
   */
  tokenLimitPolicy?: KnoxTokenLimitPolicy;

  /**
   * Extend a token's expiry to `now + its TTL` each time it is used.
   * @default false
   */
  autoRefresh?: boolean;

  /**
   * With auto refresh, a token never lives past `created + autoRefreshMaxTtl`; `null` for no cap.
   * @default null
   */
  autoRefreshMaxTtl?: number | null;

  /**
   * A refresh is written only when it moves the expiry by more than this many milliseconds.
   * @default 60000
   */
  minRefreshInterval?: number;

  /**
   * `lastUsedAt` (set at login) is written once more than this many milliseconds have passed
   * since it was last written, so a token costs at most one write per interval however busy it
   * is. Whenever a request writes the row, last use and auto refresh go in the same UPDATE.
   * @default minRefreshInterval
   */
  lastUsedUpdateInterval?: number;

  /**
   * The accepted `Authorization` schemes, compared case-insensitively. The first is the one
   * sent back in `WWW-Authenticate`.
   * @default ['Token', 'Bearer']
   */
  authHeaderPrefix?: string | string[];

  /**
   * Prepended to new tokens (at most 10 characters). Tokens issued with another prefix, or none,
   * keep working. With `tokenFormat: 'checksum'` it must be at least 4 characters and end in `_`.
   * @default '' (knox format), 'knox_' (checksum format)
   */
  tokenPrefix?: string;

  /**
   * Hex characters of randomness in a knox-format token (even, at least 32).
   * @default 64
   */
  tokenCharacterLength?: number;

  /**
   * The shape of new tokens. See {@link KnoxTokenFormat}.
   * @default 'knox'
   */
  tokenFormat?: KnoxTokenFormat;

  /**
   * Digests of earlier hashing schemes (an older knox, or your own), so that tokens stored under
   * them keep working after an upgrade. New tokens are always stored as the current digest,
   * `sha512(utf8(token))` in hex, exactly as django-rest-knox 5 stores them.
   *
   * A presented token is looked up by its current digest and every legacy digest in the same
   * single query, so a request with a current token still costs one query. When a row matched
   * a legacy digest, it is rewritten in place to the current digest (together with the
   * `lastUsedAt` / refresh write, if one is due), so from its next use on it is found by the
   * current digest; its id, expiry and metadata are kept. Concurrent first uses of one legacy
   * token all succeed. Rows are upgraded only when their tokens are used: keep a scheme listed
   * as long as tokens issued under it may still be presented.
   *
   * Each function gets the plaintext token (prefix included, after the shape check of
   * `tokenFormat` / `tokenCharacterLength`) and returns the digest as stored in the `digest`
   * column, or `null` for a token it does not apply to. One that throws or returns anything but
   * a string (or a string with a NUL character, such as a binary digest) is logged (once) and
   * counts as no match. Schemes with a per-row salt cannot be
   * looked up this way.
   *
   * @example
   * import { createHash } from 'node:crypto';
   *
   * KnoxModule.forRoot({
   *   userEntity: User,
   *   validateUser,
   *   // Tokens stored as the SHA-512 of the hex-decoded token keep working.
   *   legacyTokenDigests: [
   *     (token) =>
   *       /^[0-9a-f]{64}$/.test(token)
   *         ? createHash('sha512').update(Buffer.from(token, 'hex')).digest('hex')
   *         : null,
   *   ],
   * });
   * @default [] (only the current digest)
   */
  legacyTokenDigests?: KnoxLegacyTokenDigest[];

  /**
   * Formats the expiry in the login and refresh responses.
   * @default ISO-8601 (`Date.prototype.toISOString`)
   */
  formatExpiry?(expiry: Date): string | number;

  /**
   * Serializes the user into the login response. Without it the response has no `user` key.
   * @default undefined
   */
  serializeUser?(user: User): unknown;

  /**
   * Per-login TTL, e.g. a longer one for "remember me"; `undefined` falls back to `tokenTtl`.
   * Checked as `tokenTtl` is: a bad value fails that login (500), not the boot.
   * @default undefined (every login gets `tokenTtl`)
   */
  getTokenTtl?(
    context: KnoxLoginContext<User>,
  ): number | null | undefined | Promise<number | null | undefined>;

  /**
   * Per-login token prefix; `undefined` falls back to `tokenPrefix`. Checked as `tokenPrefix` is.
   * @default undefined (every login gets `tokenPrefix`)
   */
  getTokenPrefix?(
    context: KnoxLoginContext<User>,
  ): string | undefined | Promise<string | undefined>;

  /**
   * Per-login token limit; `undefined` falls back to `tokenLimitPerUser`. Checked as
   * `tokenLimitPerUser` is.
   * @default undefined (every login gets `tokenLimitPerUser`)
   */
  getTokenLimitPerUser?(
    context: KnoxLoginContext<User>,
  ): number | null | undefined | Promise<number | null | undefined>;

  /**
   * Per-login abilities of the new token (see docs/abilities.md): a list, or `null` for every
   * ability. `undefined` falls back to what the login body asked for in `abilities` (allowed by
   * `loginAbilities`), else every ability. Checked as abilities are: a bad value fails that
   * login (500), not the boot.
   * @default undefined (the body's `abilities`, else every ability)
   */
  getTokenAbilities?(
    context: KnoxAbilitiesContext<User>,
  ): string[] | null | undefined | Promise<string[] | null | undefined>;

  /**
   * What a login body may ask for in `abilities` (e.g. `['posts:read', 'posts:write']`, or
   * `['posts:*']` for any `posts:` ability). A body asking for an ability not granted by this
   * list is answered 400. `null`: a login body may not carry `abilities` at all (400).
   * @default null
   */
  loginAbilities?: string[] | null;

  /**
   * Personal access tokens over `POST {path}/tokens` (see {@link KnoxPersonalAccessTokenOptions});
   * `false` turns the route off (405).
   * @default { maxTtl: 31536000000, createAbility: null }
   */
  personalAccessTokens?: KnoxPersonalAccessTokenOptions | false;

  /**
   * The username to give `validateUser` when a logged-in user re-authenticates with their
   * password (`POST {path}/tokens`).
   * @default `user.username ?? user.email`
   */
  getUsername?(user: User): string;

  /**
   * Reshapes the login response body.
   * @default undefined (`{ expiry, token, id, user? }`: django-rest-knox's answer and the token's id)
   */
  getLoginResponse?(
    response: KnoxLoginResponse,
    context: KnoxLoginContext<User>,
  ): unknown;

  /**
   * Longest name a client may give its token at login.
   * @default 100
   */
  tokenNameMaxLength?: number;

  /**
   * After `POST {path}/rotate`, the old token keeps working for this many milliseconds (never
   * past its own expiry, and it is never refreshed), so a client can swap tokens without a failed
   * request; 0 revokes it at once.
   * @default 0
   */
  rotationGracePeriod?: number;

  /**
   * Login attempt throttling per username and per client IP (429 with `Retry-After`), on by
   * default; `false` turns it off. See {@link KnoxLoginThrottleOptions}.
   * @default { ttl: 60000, limitPerUsername: 10, limitPerIp: 30, maxKeys: 100000 }
   */
  loginThrottle?: KnoxLoginThrottleOptions | false;

  /**
   * The cookie transport, for browser front ends that must not hold tokens in JavaScript: login
   * sets the token in an `HttpOnly; Secure; SameSite=Strict` cookie instead of the response body,
   * the guards read it when there is no `Authorization` header, requests with unsafe methods that
   * rely on it must pass an Origin check (CSRF), and logout clears it. See
   * {@link KnoxCookieOptions}. `true` takes every default.
   * @default false
   */
  cookie?: KnoxCookieOptions | boolean;

  /**
   * The clock, for tests and for apps with their own time source.
   * @default the system clock
   */
  clock?: KnoxClock;

  /**
   * An in-process cache of authenticated tokens (keyed by digest), so that a token seen
   * recently costs no database round trip. `true` takes the defaults (10 000 entries, 60 s
   * `maxAge`, invalidation through PostgreSQL `LISTEN/NOTIFY` triggers); an object sets them
   * (see {@link KnoxCacheOptions}). Revocation by any writer reaches every instance through the
   * bus; while the bus is down, the cache is bypassed. See docs/cache.md.
   * @default false
   */
  cache?: boolean | KnoxCacheOptions;
}

/**
 * Settings that must be known when the module is declared, even under `forRootAsync`: the
 * store's (`userEntity`, `tableName`, `schema`) and the module's own.
 */
export interface KnoxModuleExtras<User = any> extends KnoxStoreSettings<User> {
  /**
   * Register the module globally, so `@UseGuards(KnoxGuard)` resolves in every module.
   * @default true
   */
  isGlobal?: boolean;

  /**
   * Mount the controller with `login`, `logout`, `logoutall` and the session routes.
   * @default true
   */
  controller?: boolean;

  /**
   * The path the controller is mounted at.
   * @default 'auth'
   */
  path?: string;

  /**
   * The TypeORM data source (its name, or the `DataSource` options' name) holding the tables.
   * @default the default data source
   */
  dataSource?: string;
}
