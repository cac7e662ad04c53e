/**
 * Names of the events the module emits through `@nestjs/event-emitter` (when the app has set up
 * `EventEmitterModule`; without it nothing is emitted and everything else works).
 *
 * @example
 * @OnEvent(KnoxEvents.LOGIN)
 * onLogin(event: KnoxLoginEvent) { this.logger.log(`user ${event.userId} logged in`); }
 */
export const KnoxEvents = {
  /**
   * A user logged in: `POST {path}/login` issued a token (or the app called
   * `KnoxTokenService.create` with `source: 'login'` from a login route of its own). Payload:
   * {@link KnoxLoginEvent}. Tokens issued otherwise emit only {@link KnoxEvents.TOKEN_CREATED}.
   */
  LOGIN: 'knox.login',
  /**
   * A new token exists, whatever made it: a login, `POST {path}/tokens`, a rotation, or the app
   * (`KnoxTokenService.create`). Payload: {@link KnoxTokenCreatedEvent}, whose `source` says which.
   */
  TOKEN_CREATED: 'knox.token-created',
  /** A token was revoked by `POST {path}/logout`. Payload: {@link KnoxTokenEvent}. */
  LOGOUT: 'knox.logout',
  /**
   * All of a user's tokens were revoked by `POST {path}/logoutall`, or by an admin
   * (`POST {path}/admin/users/:userId/logoutall`, `reason: 'admin'`). Payload: {@link KnoxLogoutAllEvent}.
   */
  LOGOUT_ALL: 'knox.logout-all',
  /** An expired token was presented and deleted. Payload: {@link KnoxTokenEvent}. */
  TOKEN_EXPIRED: 'knox.token-expired',
  /** A token's expiry was extended (auto refresh or `POST {path}/refresh`). Payload: {@link KnoxTokenRefreshedEvent}. */
  TOKEN_REFRESHED: 'knox.token-refreshed',
  /** A token was replaced by a new one. Payload: {@link KnoxTokenRotatedEvent}. */
  TOKEN_ROTATED: 'knox.token-rotated',
  /** A token was revoked, for any reason. Payload: {@link KnoxTokenRevokedEvent}. */
  TOKEN_REVOKED: 'knox.token-revoked',
} as const;

/** One of the {@link KnoxEvents} names. */
export type KnoxEventName = (typeof KnoxEvents)[keyof typeof KnoxEvents];

/**
 * Why a token was revoked: by `logout`, `logout-all`, `logout-others` or `DELETE tokens/:id`
 * (`revoked-by-id`), to make room under the token limit (`evicted`), by a rotation without grace
 * period (`rotated`), by an operator through the token admin (`admin`, with the `actorId`), or by
 * the app through {@link KnoxTokenService} (`app`, its default).
 * `expired` is never given by the module itself (a presented expired token emits
 * `KnoxEvents.TOKEN_EXPIRED`); an app may pass it for tokens it revokes on rules of its own.
 */
export type KnoxRevokeReason =
  | 'logout'
  | 'logout-all'
  | 'logout-others'
  | 'revoked-by-id'
  | 'evicted'
  | 'rotated'
  | 'expired'
  | 'admin'
  | 'app';

/** Where a request came from. */
export interface KnoxClientInfo {
  /** The client IP (honours Express/Fastify `trust proxy`). */
  ip: string | null;
  /** The `User-Agent` header. */
  userAgent: string | null;
}

/** Payload of the events about one token. Never carries the token itself. */
export interface KnoxTokenEvent extends KnoxClientInfo {
  /** The owner's primary key. */
  userId: unknown;
  /** The token's public id. */
  tokenId: string;
  /** knox's `token_key` (the first 15 characters: an identifier, not the secret). */
  tokenKey: string;
}

/** Payload of {@link KnoxEvents.LOGIN}. */
export interface KnoxLoginEvent extends KnoxTokenEvent {
  /** When the new token expires; `null` never. */
  expiry: Date | null;
  /** The name the client gave the token. */
  name: string | null;
  /** What the new token may do; `null` for every ability. */
  abilities: string[] | null;
}

/**
 * What made a new token: a login (`login`), `POST {path}/tokens` (`personal-access-token`), a
 * rotation (`rotate`), or the app through `KnoxTokenService.create` (`app`, its default).
 */
export type KnoxTokenSource =
  'login' | 'personal-access-token' | 'rotate' | 'app';

/** Payload of {@link KnoxEvents.TOKEN_CREATED}: the new token, and what made it. */
export interface KnoxTokenCreatedEvent extends KnoxLoginEvent {
  /** What made the token. */
  source: KnoxTokenSource;
}

/** Payload of {@link KnoxEvents.LOGOUT_ALL}. */
export interface KnoxLogoutAllEvent extends KnoxClientInfo {
  /** The user's primary key. */
  userId: unknown;
  /** How many tokens were revoked. */
  count: number;
  /** `'admin'` when an operator did it through the token admin; absent for the user's own. */
  reason?: KnoxRevokeReason;
  /** The admin's user id, when an operator did it (the audit trail names who). */
  actorId?: unknown;
}

/** Payload of {@link KnoxEvents.TOKEN_REFRESHED}. */
export interface KnoxTokenRefreshedEvent extends KnoxTokenEvent {
  /** The new expiry. */
  expiry: Date;
}

/** Payload of {@link KnoxEvents.TOKEN_ROTATED}. */
export interface KnoxTokenRotatedEvent extends KnoxTokenEvent {
  /** The public id of the new token. */
  newTokenId: string;
  /** Until when the old token keeps working (`null`: it was revoked at once). */
  oldTokenValidUntil: Date | null;
  /** What the new token may do (the old one's abilities); `null` for every ability. */
  abilities: string[] | null;
}

/** Payload of {@link KnoxEvents.TOKEN_REVOKED}. */
export interface KnoxTokenRevokedEvent extends KnoxTokenEvent {
  /** Why it was revoked. */
  reason: KnoxRevokeReason;
  /** The admin's user id, when an operator revoked it (`reason: 'admin'`). */
  actorId?: unknown;
}
