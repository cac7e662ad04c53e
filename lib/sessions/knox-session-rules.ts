import type { KnoxToken } from '../store/knox-token.entity.js';
import type { KnoxTokenLimitPolicy } from '../options/knox-module-options.interface.js';

/**
 * The decisions about a token's lifetime, as pure functions of the token, the time and the
 * options: no I/O, so each is unit-tested without a database. The request path, the session
 * operations and the cache all decide through these.
 */

/** The options these rules read (a subset of the resolved options). */
export interface KnoxLifetimeOptions {
  tokenTtl: number | null;
  autoRefresh: boolean;
  autoRefreshMaxTtl: number | null;
  minRefreshInterval: number;
  lastUsedUpdateInterval: number;
}

/** Whether the token has expired at `now` (a token is valid up to and including its expiry). */
export function isExpired(
  token: Pick<KnoxToken, 'expiry'>,
  now: Date,
): boolean {
  return token.expiry !== null && token.expiry.getTime() < now.getTime();
}

/**
 * The expiry a refresh at `now` gives: `now` + the token's TTL (the module's TTL for a row
 * without one), capped at `created + autoRefreshMaxTtl` and at the token's own `maxExpiry` (a
 * personal access token's `created + maxTtl`); `null` when there is no TTL.
 */
export function refreshedExpiry(
  token: Pick<KnoxToken, 'ttl' | 'created'> &
    Partial<Pick<KnoxToken, 'maxExpiry'>>,
  now: Date,
  options: Pick<KnoxLifetimeOptions, 'tokenTtl' | 'autoRefreshMaxTtl'>,
): Date | null {
  const ttl = token.ttl ?? options.tokenTtl;
  if (ttl === null) {
    return null;
  }
  let next = now.getTime() + ttl;
  if (options.autoRefreshMaxTtl !== null) {
    next = Math.min(next, token.created.getTime() + options.autoRefreshMaxTtl);
  }
  if (token.maxExpiry) {
    next = Math.min(next, token.maxExpiry.getTime());
  }
  return new Date(next);
}

/** What an authenticated request should write, if anything. */
export interface KnoxTouchPlan {
  /** Whether to write at all (`lastUsedAt` is then always written). */
  write: boolean;
  /** The new expiry to write with it, when an auto refresh is due. */
  expiry?: Date;
}

/**
 * The write a request may cause, at most one per interval: `lastUsedAt` is due once more than
 * `lastUsedUpdateInterval` has passed, an auto refresh once it would move the expiry by more
 * than `minRefreshInterval`. Whenever either is due, both are written, which keeps them in phase
 * so that they keep falling due together. A retired token (living out a rotation's grace
 * period) is read-only: no write at all, neither refresh nor last use.
 */
export function planTouch(
  token: Pick<
    KnoxToken,
    'expiry' | 'retiredAt' | 'lastUsedAt' | 'ttl' | 'created'
  > &
    Partial<Pick<KnoxToken, 'maxExpiry'>>,
  now: Date,
  options: KnoxLifetimeOptions,
): KnoxTouchPlan {
  if (token.retiredAt) {
    return { write: false };
  }
  let next: Date | null = null;
  if (options.autoRefresh && token.expiry) {
    next = refreshedExpiry(token, now, options);
  }
  const refreshDue =
    next !== null &&
    token.expiry !== null &&
    next.getTime() - token.expiry.getTime() > options.minRefreshInterval;
  const useDue =
    !token.lastUsedAt ||
    now.getTime() - token.lastUsedAt.getTime() > options.lastUsedUpdateInterval;
  if (!refreshDue && !useDue) {
    return { write: false };
  }
  if (next && token.expiry && next.getTime() > token.expiry.getTime()) {
    return { write: true, expiry: next };
  }
  return { write: true };
}

/**
 * The expiry of a rotated token's successor: refreshed as of `now` (so never past the token's
 * `maxExpiry`, which the successor inherits), never earlier than the old token's own expiry;
 * `null` when the old one never expired.
 */
export function rotatedExpiry(
  token: Pick<KnoxToken, 'expiry' | 'ttl' | 'created'> &
    Partial<Pick<KnoxToken, 'maxExpiry'>>,
  now: Date,
  options: Pick<KnoxLifetimeOptions, 'tokenTtl' | 'autoRefreshMaxTtl'>,
): Date | null {
  if (!token.expiry) {
    return null;
  }
  const next = refreshedExpiry(token, now, options) ?? token.expiry;
  return next.getTime() < token.expiry.getTime() ? token.expiry : next;
}

/**
 * The latest expiry of a personal access token created at `now`: `now + maxTtl` (refresh and
 * rotation stop there), and, for one minted by a token through `createAbility` (no password),
 * never past the minting token's own expiry or cap. `null`: no cap.
 */
export function personalTokenCap(
  now: Date,
  maxTtl: number | null,
  minter: Pick<KnoxToken, 'expiry' | 'maxExpiry'> | null,
): Date | null {
  const ends = [
    maxTtl === null ? null : now.getTime() + maxTtl,
    minter?.expiry?.getTime() ?? null,
    minter?.maxExpiry?.getTime() ?? null,
  ].filter((end): end is number => end !== null);
  return ends.length === 0 ? null : new Date(Math.min(...ends));
}

/**
 * When a rotated token stops working: `now` + the grace period, never past its own expiry;
 * `null` (revoked at once) without a grace period.
 */
export function graceEnd(
  token: Pick<KnoxToken, 'expiry'>,
  now: Date,
  gracePeriod: number,
): Date | null {
  if (gracePeriod <= 0) {
    return null;
  }
  const end = new Date(now.getTime() + gracePeriod);
  return token.expiry && token.expiry < end ? token.expiry : end;
}

/**
 * Which of a user's live tokens to revoke so that one more fits under `limit`: none when there
 * is room, `null` when the policy is `reject` (the login is refused). Tokens retired by a
 * rotation (living out their grace period) go first; then the oldest, or the least recently
 * used.
 */
export function chooseEvictions<
  T extends Pick<KnoxToken, 'retiredAt' | 'lastUsedAt' | 'created'>,
>(live: readonly T[], limit: number, policy: KnoxTokenLimitPolicy): T[] | null {
  if (live.length < limit) {
    return [];
  }
  if (policy === 'reject') {
    return null;
  }
  const retired = (t: T) => (t.retiredAt ? 0 : 1);
  const created = (t: T) => t.created.getTime();
  const lastUse = (t: T) => (t.lastUsedAt ?? t.created).getTime();
  const order =
    policy === 'evict-least-recently-used'
      ? (a: T, b: T) =>
          retired(a) - retired(b) ||
          lastUse(a) - lastUse(b) ||
          created(a) - created(b)
      : (a: T, b: T) => retired(a) - retired(b) || created(a) - created(b);
  return [...live].sort(order).slice(0, live.length - limit + 1);
}

/**
 * Whether a rotation may keep the old token through its grace period under the user's limit:
 * the successor and the retired token both count, so with `live` tokens (the rotating one
 * included) there must be room for one more. Otherwise the old token is revoked at once.
 */
export function graceFitsLimit(
  liveCount: number,
  limit: number | null,
): boolean {
  return limit === null || liveCount + 1 <= limit;
}
