import { Injectable, OnModuleInit } from '@nestjs/common';
import {
  KnoxAuthenticator,
  type KnoxAuthResult,
} from './auth/knox-authenticator.js';
import type { KnoxClientInfo, KnoxRevokeReason } from './events/knox.events.js';
import type {
  KnoxCreateTokenOptions,
  KnoxIssuedToken,
} from './sessions/knox-new-token.js';
import {
  KnoxSessions,
  type KnoxRevokeOptions,
} from './sessions/knox-sessions.js';
import type { KnoxToken } from './store/knox-token.entity.js';
import { KnoxTokenStore } from './store/knox-token.store.js';
import { KnoxCache } from './cache/knox-cache.js';
import { grants } from './abilities/knox-abilities.js';

export type { KnoxAuthResult } from './auth/knox-authenticator.js';
export type {
  KnoxCreateTokenOptions,
  KnoxIssuedToken,
} from './sessions/knox-new-token.js';
export type { KnoxRevokeOptions } from './sessions/knox-sessions.js';

/** `revoke` / `revokeById` options: the object, or the older positional `(reason, client)`. */
function revokeOptionsOf(
  options: KnoxRevokeOptions | KnoxRevokeReason | undefined,
  client: Partial<KnoxClientInfo>,
): KnoxRevokeOptions {
  return typeof options === 'string'
    ? { ...client, reason: options }
    : { ...client, ...options };
}

/**
 * {@link KnoxTokenService.authenticate}'s answer without a promise, when the cache holds it and
 * the request is due no write; `undefined` otherwise — and always for a stand-in or a subclass
 * that overrides `authenticate`, whose own method must then be called. The guards try it first.
 * Not exported from the package.
 */
export function cachedAuthentication<User>(
  tokens: KnoxTokenService<User>,
  token: string,
): KnoxAuthResult<User> | undefined {
  // The library's own authenticate (a stand-in, or a subclass that overrides it, does not have
  // it) also means the library's own authenticator behind it.
  return tokens.authenticate === KnoxTokenService.prototype.authenticate
    ? tokens['authenticator'].authenticateFromCache(token)
    : undefined;
}

/**
 * Creates, authenticates, refreshes, rotates and revokes tokens: the API for server-side work,
 * e.g. revoking every token of a user whose password changed. A thin facade: the request path
 * is {@link KnoxAuthenticator}; issuing and revoking is `KnoxSessions`; SQL is `KnoxTokenStore`.
 *
 * Everything that creates or revokes a user's tokens is applied one at a time per user (see
 * SECURITY.md, "Revocation"); authenticating takes no lock.
 *
 * @example
 * await this.knox.revokeAll(user.id, { reason: 'app' });
 */
@Injectable()
export class KnoxTokenService<User = any> implements OnModuleInit {
  constructor(
    private readonly authenticator: KnoxAuthenticator,
    private readonly sessions: KnoxSessions,
    private readonly store: KnoxTokenStore,
    private readonly cache: KnoxCache,
  ) {}

  /** Checks the user entity's metadata at boot. */
  onModuleInit(): void {
    this.store.userPrimaryColumn();
  }

  /**
   * Authenticates a plaintext token: one query (token and user together, by the current digest
   * and any `legacyTokenDigests` at once), and a write only when an auto refresh or a
   * `lastUsedAt` update is due, or when the row was found by a legacy digest (it is then moved
   * to the current digest in the same write). Takes no lock.
   *
   * @throws UnauthorizedException for an unknown, malformed (or not a string) or expired token,
   *   or an inactive user
   * @throws ServiceUnavailableException when the database cannot be reached
   */
  authenticate(
    token: string,
    client: Partial<KnoxClientInfo> = {},
  ): Promise<KnoxAuthResult<User>> {
    return this.authenticator.authenticate(token, client);
  }

  /**
   * Issues a token for `user`, enforcing the live-token limit atomically (the user's tokens are
   * counted under the user's lock). Emits {@link KnoxEvents.TOKEN_CREATED} with `source: 'app'`
   * (or the `source` given), and {@link KnoxEvents.LOGIN} only with `source: 'login'`.
   *
   * @throws ForbiddenException when the limit is reached and the policy is `reject`
   * @throws UnauthorizedException "User inactive or deleted." when the user's row does not exist
   * @throws Error when an option is invalid (a TTL, prefix, limit or policy the module's options
   *   would refuse)
   */
  create(
    user: User,
    options: KnoxCreateTokenOptions = {},
  ): Promise<KnoxIssuedToken<User>> {
    return this.sessions.create(user, options);
  }

  /**
   * The user's live tokens (expired ones left out), newest first, each with its `user` loaded
   * so that it can be passed to {@link refresh}, {@link rotate} or {@link revoke}.
   */
  list(userId: unknown): Promise<KnoxToken<User>[]> {
    return this.sessions.list(userId);
  }

  /**
   * Revokes one token (a token retired by a rotation too). Takes the options object
   * (`{ reason, ip, userAgent }`, as `revokeById` and `revokeAll` do); the positional form
   * `(token, reason, client)` still works. Emits {@link KnoxEvents.TOKEN_REVOKED} (and
   * {@link KnoxEvents.LOGOUT} when the reason is `logout`).
   *
   * @example
   * await this.knox.revoke(token, { reason: 'logout', ip: request.ip });
   * @returns whether the token still existed
   */
  revoke(
    token: KnoxToken<User>,
    options?: Omit<KnoxRevokeOptions, 'actor'> | KnoxRevokeReason,
    client: Partial<KnoxClientInfo> = {},
  ): Promise<boolean> {
    const { reason = 'app', ip, userAgent } = revokeOptionsOf(options, client);
    return this.sessions.revoke(token, reason, { ip, userAgent });
  }

  /**
   * Revokes one of the user's tokens by its public id. Takes the options object
   * (`{ reason, actor, ip, userAgent }`); the positional form `(userId, id, reason, client)` still
   * works.
   *
   * @throws NotFoundException when the user has no such token
   * @throws UnauthorizedException when `actor` is given and has been retired, revoked or expired
   */
  revokeById(
    userId: unknown,
    tokenId: string,
    options?: KnoxRevokeOptions | KnoxRevokeReason,
    client: Partial<KnoxClientInfo> = {},
  ): Promise<void> {
    return this.sessions.revokeById(
      userId,
      tokenId,
      revokeOptionsOf(options, client),
    );
  }

  /**
   * Revokes all of a user's tokens, never-expiring ones too, optionally sparing one (by public
   * id; an `except` that is no token id spares nothing). Use it when a password changes or an
   * account is disabled. Every token of the user that exists when it takes the user's lock is
   * revoked, including those minted by a rotation that overlapped it. Emits
   * {@link KnoxEvents.TOKEN_REVOKED} for each, and {@link KnoxEvents.LOGOUT_ALL} when the
   * reason is `logout-all`.
   *
   * @returns how many tokens were revoked
   * @throws UnauthorizedException when `except` is a token retired by a rotation (or expired),
   *   or `actor` is given and no longer live
   */
  revokeAll(
    userId: unknown,
    options: KnoxRevokeOptions & { except?: string } = {},
  ): Promise<number> {
    return this.sessions.revokeAll(userId, options);
  }

  /**
   * Extends a token's expiry to `now + its TTL` (capped at `created + autoRefreshMaxTtl`) now,
   * whether or not `autoRefresh` is on. A token that never expires is left as it is. Emits
   * {@link KnoxEvents.TOKEN_REFRESHED} when the expiry moved.
   *
   * @returns the token's expiry afterwards (`null` for a token that never expires)
   * @throws UnauthorizedException when the token has expired, was revoked, or was retired by
   *   {@link rotate} (also when the rotation came after `token` was read)
   */
  refresh(
    token: KnoxToken<User>,
    client: Partial<KnoxClientInfo> = {},
  ): Promise<Date | null> {
    return this.sessions.refresh(token, client);
  }

  /**
   * Issues a new token with the same name, TTL, prefix and metadata (user agent, IP, creation
   * time, so `autoRefreshMaxTtl` still bounds the session) and retires the old one. The old one
   * keeps working for `rotationGracePeriod` (never past its own expiry, and never refreshed) for
   * reads only, or is revoked at once when the grace period is 0 or when keeping it would take
   * the user past `tokenLimitPerUser`. Of concurrent rotations of one token exactly one
   * succeeds. Emits {@link KnoxEvents.TOKEN_ROTATED}, and {@link KnoxEvents.TOKEN_REVOKED}
   * (reason `rotated`) when the old one is revoked at once.
   *
   * @throws UnauthorizedException when the old token has expired, was revoked, or is already
   *   retired (rotated before)
   */
  rotate(
    token: KnoxToken<User>,
    client: Partial<KnoxClientInfo> = {},
  ): Promise<KnoxIssuedToken<User>> {
    return this.sessions.rotate(token, client);
  }

  /**
   * Deletes expired tokens in batches of `batchSize` (a whole number >= 1; default 100), off
   * the request path (call it from a scheduled job). Each batch is one short autocommit DELETE
   * that finds its rows through the expiry index and skips rows another transaction holds at
   * that moment (they are left for the next run), so it never waits for a lock and holds its
   * own briefly. Emits no events; the cache never serves an expired token anyway.
   *
   * @returns how many tokens were deleted
   */
  pruneExpired(options: { batchSize?: number } = {}): Promise<number> {
    return this.sessions.pruneExpired(options);
  }

  /**
   * Drops a user's tokens from this instance's cache (and, with the Redis bus, from the
   * others'), for state the database triggers cannot see: e.g. an `isUserActive` that reads
   * fields loaded from another table, or a user changed where no trigger watches. A no-op
   * without the cache.
   */
  invalidateUser(userId: unknown): void {
    this.cache.forgetUser(userId);
  }

  /**
   * Whether `token` holds `ability` (see docs/abilities.md): `'*'` and abilities `null` (a
   * token issued without abilities, or a row django-rest-knox wrote) hold every ability, `ns:*`
   * every ability that starts with `ns:`. `false` when there is no token. The same check as
   * `token.can(ability)`, for tokens that are plain objects (e.g. from a cache or a
   * serialized session).
   *
   * @example
   * if (!this.knox.can(request.auth, 'posts:delete')) throw new ForbiddenException();
   */
  can(
    token: Pick<KnoxToken, 'abilities'> | null | undefined,
    ability: string,
  ): boolean {
    return (
      token !== null && token !== undefined && grants(token.abilities, ability)
    );
  }

  /**
   * Renames one of the user's tokens (`null` clears the name), under the user's lock.
   *
   * @returns the renamed token (its user not loaded)
   * @throws NotFoundException when the user has no such live token
   * @throws UnauthorizedException when `actor` is given and has been retired, revoked or expired
   */
  rename(
    userId: unknown,
    tokenId: string,
    name: string | null,
    options: Pick<KnoxRevokeOptions, 'actor'> = {},
  ): Promise<KnoxToken> {
    return this.sessions.rename(userId, tokenId, name, options);
  }

  /** The primary key of a user entity instance. */
  userIdOf(user: User): unknown {
    return this.store.userIdOf(user);
  }
}
