import type { KnoxToken } from '../store/knox-token.entity.js';

/** A token as `GET {path}/tokens` lists it: never the digest. */
export interface KnoxSessionView {
  /** The token's public id (for `DELETE {path}/tokens/:id`). */
  id: string;
  /** The name the client gave the token at login. */
  name: string | null;
  /** The user agent of the login request. */
  userAgent: string | null;
  /** The client IP of the login request. */
  ip: string | null;
  /** When the session began (kept across rotations). */
  created: Date;
  /** When the token was last used (written at most once per `lastUsedUpdateInterval`). */
  lastUsedAt: Date | null;
  /** The client IP of that last use (written with `lastUsedAt`). */
  lastUsedIp: string | null;
  /** When the token stops working; `null` never. */
  expiry: Date | null;
  /** What the token may do; `null` for every ability. */
  abilities: string[] | null;
  /** Whether this is the token making the request. */
  current: boolean;
}

/** The answer of `POST {path}/tokens`: the new personal access token, shown this once. */
export interface KnoxPersonalTokenResponse {
  /** The token's public id. */
  id: string;
  /** The token in plaintext. This is the only time it is ever shown. */
  token: string;
  /** The expiry, formatted by `formatExpiry`, or `null` for a token that never expires. */
  expiry: string | number | null;
  /** What the token may do. */
  abilities: string[];
  /** The name it was given. */
  name: string;
}

/** A token as `GET tokens` lists it. */
export function sessionView(
  token: KnoxToken,
  current: KnoxToken,
): KnoxSessionView {
  return {
    id: token.id,
    name: token.name,
    userAgent: token.userAgent,
    ip: token.ip,
    created: token.created,
    lastUsedAt: token.lastUsedAt,
    lastUsedIp: token.lastUsedIp,
    expiry: token.expiry,
    abilities: token.abilities,
    current: token.id === current.id,
  };
}
