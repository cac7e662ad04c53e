import {
  Inject,
  Injectable,
  Logger,
  UnauthorizedException,
} from '@nestjs/common';
import { KnoxClock } from '../knox-clock.js';
import { KnoxCache } from '../cache/knox-cache.js';
import {
  KNOX_RESOLVED_OPTIONS,
  MAXIMUM_TOKEN_PREFIX_LENGTH,
} from '../knox.constants.js';
import { KnoxMessages } from '../knox.messages.js';
import { KnoxEventSink } from '../events/knox-event-sink.js';
import { KnoxEvents, type KnoxClientInfo } from '../events/knox.events.js';
import type { ResolvedKnoxOptions } from '../options/knox-options.js';
import { isExpired, planTouch } from '../sessions/knox-session-rules.js';
import type { KnoxToken } from '../store/knox-token.entity.js';
import { KnoxTokenStore } from '../store/knox-token.store.js';
import {
  legacyDigestsOf,
  matchDigest,
  prefixOfPlaintext,
} from '../tokens/knox-legacy-digests.js';
import { rememberPresentedPrefix } from '../tokens/knox-presented-prefix.js';
import {
  CHECKSUM_LENGTH,
  CHECKSUM_RANDOM_LENGTH,
  digestToken,
  digestsEqual,
  isWellFormedToken,
} from '../tokens/knox-token-format.js';

/** What a successful authentication yields. */
export interface KnoxAuthResult<User = any> {
  /** The token's owner, as loaded with the token (an instance of `userEntity`). */
  user: User;
  /** The token's record (never the plaintext). */
  token: KnoxToken<User>;
}

/**
 * The request path, top to bottom: the token's shape, its digest, one query for the token and
 * its user, the expiry and user checks, and the write a request may cause. No lock is taken.
 */
@Injectable()
export class KnoxAuthenticator {
  private readonly logger = new Logger('KnoxTokenService');
  /** `legacyTokenDigests` entries already reported as broken (logged once each). */
  private readonly reportedLegacySchemes = new Set<number>();
  /** The longest token either shape allows (knox's hex, the checksum format). */
  private readonly longestToken: number;

  constructor(
    @Inject(KNOX_RESOLVED_OPTIONS)
    private readonly options: ResolvedKnoxOptions,
    private readonly store: KnoxTokenStore,
    private readonly events: KnoxEventSink,
    private readonly clock: KnoxClock,
    private readonly cache: KnoxCache,
  ) {
    this.longestToken =
      MAXIMUM_TOKEN_PREFIX_LENGTH +
      Math.max(
        options.tokenCharacterLength,
        CHECKSUM_RANDOM_LENGTH + CHECKSUM_LENGTH,
      );
  }

  /**
   * Authenticates a plaintext token: one query (token and user together, by the current digest
   * and any `legacyTokenDigests` at once), and a write only when an auto refresh or a
   * `lastUsedAt` update is due, or when the row was found by a legacy digest (it then moves to
   * the current digest in the same write). Concurrent calls for one token that miss the cache
   * share one lookup (see `KnoxCache.shareLookup`).
   *
   * @throws UnauthorizedException for an unknown, malformed (or not a string) or expired token,
   *   or an inactive user
   * @throws ServiceUnavailableException when the database cannot be reached
   */
  async authenticate(
    token: string,
    client: Partial<KnoxClientInfo> = {},
  ): Promise<KnoxAuthResult> {
    // 1. The shape: a malformed token costs no query.
    if (!this.isWellFormed(token)) {
      throw new UnauthorizedException(KnoxMessages.INVALID_TOKEN);
    }
    const digest = digestToken(token);
    const now = this.clock.now();
    // 2. The cache (when on): a token the database vouched for recently costs no query. It
    //    misses past the token's expiry or `maxAge`, after any invalidation, and while its bus
    //    is down.
    const cached = this.cache.lookup(digest, now);
    if (cached) {
      return this.authenticateCached(cached, digest, now, client);
    }
    // Concurrent misses of one token (a GraphQL operation's aliases, a burst of requests) share
    // one lookup: the first one's (its client is the one the touch write records).
    return this.cache.shareLookup(digest, () =>
      this.authenticateFromDatabase(token, digest, now, client),
    );
  }

  /** Steps 3 to 5 of {@link authenticate}: the database lookup, the checks, the write. */
  private async authenticateFromDatabase(
    token: string,
    digest: string,
    now: Date,
    client: Partial<KnoxClientInfo>,
  ): Promise<KnoxAuthResult> {
    const ticket = this.cache.ticket();
    // 3. One query for the row and its user, by every digest the token may be stored under.
    const record = await this.findRecord(token, digest);
    // 4. Expiry (an expired row is deleted when seen) and the user.
    if (isExpired(record, now)) {
      return this.refuseExpired(record, now, client);
    }
    this.checkUserActive(record.user);
    // 5. The write a request may cause: last use, auto refresh, a legacy digest's upgrade; then
    //    the cache remembers the row, unless an invalidation came in meanwhile.
    const upgrade = digestsEqual(record.digest, digest) ? undefined : digest;
    const storedUnder = record.digest;
    await this.touch(record, now, client, upgrade);
    // The prefix first: the cached copy carries it.
    this.rememberPrefix(record, token);
    if (upgrade === undefined) {
      const userId = this.store.userIdOf(record.user);
      this.cache.remember(ticket, { user: record.user, token: record }, userId);
    } else {
      this.cache.forgetTokens([storedUnder]);
    }
    return { user: record.user, token: record };
  }

  /**
   * {@link authenticate}'s answer without waiting, when the cache holds the token and the
   * request is due no write (no `lastUsedAt` update, no auto refresh): the guards' fast path.
   * `undefined` when the database is needed — the cache is off or down, the token is not
   * cached, or a write is due — and the caller then calls {@link authenticate}.
   *
   * @throws UnauthorizedException for an inactive user, as `authenticate`
   */
  authenticateFromCache(token: string): KnoxAuthResult | undefined {
    // No shape check: only well-formed tokens are ever cached (a miss goes to authenticate,
    // which checks it); the length bound keeps a huge header from being hashed twice.
    if (
      !this.cache.available ||
      typeof token !== 'string' ||
      token.length > this.longestToken
    ) {
      return undefined;
    }
    const now = this.clock.now();
    const cached = this.cache.lookup(digestToken(token), now);
    if (!cached || planTouch(cached.token, now, this.options).write) {
      return undefined;
    }
    this.checkUserActive(cached.user);
    return cached;
  }

  private isWellFormed(token: unknown): token is string {
    return (
      typeof token === 'string' &&
      isWellFormedToken(
        token,
        this.options.tokenCharacterLength,
        MAXIMUM_TOKEN_PREFIX_LENGTH,
      )
    );
  }

  /**
   * A token found in the cache: the user check, and the touch write when due — one per
   * interval per instance (concurrent requests leave it to the first).
   */
  private async authenticateCached(
    cached: KnoxAuthResult,
    digest: string,
    now: Date,
    client: Partial<KnoxClientInfo>,
  ): Promise<KnoxAuthResult> {
    this.checkUserActive(cached.user);
    if (
      planTouch(cached.token, now, this.options).write &&
      this.cache.beginTouch(digest)
    ) {
      try {
        await this.touch(cached.token, now, client, undefined);
      } finally {
        this.cache.endTouch(digest);
      }
    }
    // The cached record already carries the prefix it was presented with.
    return cached;
  }

  /** The row stored under the token's digest or one of its legacy digests (one query); 401 if none. */
  private async findRecord(token: string, digest: string): Promise<KnoxToken> {
    const legacy = legacyDigestsOf(
      token,
      digest,
      this.options.legacyTokenDigests,
      (i, p) => this.reportLegacyScheme(i, p),
    );
    const rows = await this.store.findByDigests([digest, ...legacy]);
    const record = matchDigest(rows, digest, legacy);
    if (!record) {
      throw new UnauthorizedException(KnoxMessages.INVALID_TOKEN);
    }
    return record;
  }

  /** An expired row: deleted (`knox.token-expired` if this request deleted it), then 401. */
  private async refuseExpired(
    record: KnoxToken,
    now: Date,
    client: Partial<KnoxClientInfo>,
  ): Promise<never> {
    const deleted = await this.store.deleteExpired(record.digest, now);
    this.cache.forgetTokens([record.digest]);
    if (deleted) {
      const userId = this.store.userIdOf(record.user);
      this.events.emit(
        KnoxEvents.TOKEN_EXPIRED,
        this.events.tokenEvent(record, userId, client),
      );
    }
    throw new UnauthorizedException(KnoxMessages.INVALID_TOKEN);
  }

  private checkUserActive(user: unknown): void {
    if (!this.options.isUserActive(user)) {
      throw new UnauthorizedException(KnoxMessages.USER_INACTIVE);
    }
  }

  /** Remembers the prefix the token was presented with, for the request's `token`. */
  private rememberPrefix(record: KnoxToken, token: string): void {
    rememberPresentedPrefix(
      record,
      prefixOfPlaintext(token, this.options.tokenCharacterLength),
    );
  }

  /**
   * The write of a request, when due: last use, auto refresh, a legacy digest's upgrade. The
   * record (and its cached entry) carry what was written; 401 when the row is gone.
   */
  private async touch(
    record: KnoxToken,
    now: Date,
    client: Partial<KnoxClientInfo>,
    upgrade: string | undefined,
  ): Promise<void> {
    const plan = planTouch(record, now, this.options);
    if (!plan.write && upgrade === undefined) {
      return;
    }
    const lastUsedIp = client.ip?.slice(0, 45) ?? null;
    const row = await this.store.touch(record.digest, {
      lastUsedAt: now,
      lastUsedIp,
      expiry: plan.expiry,
      digest: upgrade,
    });
    if (!row) {
      // Revoked since it was read.
      this.cache.forgetTokens([record.digest]);
      throw new UnauthorizedException(KnoxMessages.INVALID_TOKEN);
    }
    // What the row holds now (a row retired meanwhile kept its last use: it is read-only).
    Object.assign(record, row);
    if (upgrade !== undefined) {
      record.digest = upgrade;
    }
    // A cached entry carries what was written (at most one write per interval per instance).
    this.cache.update(record);
    if (plan.expiry && row.expiry?.getTime() === plan.expiry.getTime()) {
      this.emitRefreshed(record, plan.expiry, client);
    }
  }

  private emitRefreshed(
    record: KnoxToken,
    expiry: Date,
    client: Partial<KnoxClientInfo>,
  ): void {
    const userId = this.store.userIdOf(record.user);
    this.events.emit(KnoxEvents.TOKEN_REFRESHED, {
      ...this.events.tokenEvent(record, userId, client),
      expiry,
    });
  }

  private reportLegacyScheme(index: number, problem: string): void {
    if (this.reportedLegacySchemes.has(index)) {
      return;
    }
    this.reportedLegacySchemes.add(index);
    this.logger.error(
      `legacyTokenDigests[${index}] ${problem}; it is ignored for such tokens (logged once).`,
    );
  }
}
