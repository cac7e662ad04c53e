import {
  Inject,
  Injectable,
  Logger,
  UnauthorizedException,
} from '@nestjs/common';
import { KnoxClock } from '../knox-clock.js';
import { KnoxCache } from './cache/knox-cache.js';
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

  constructor(
    @Inject(KNOX_RESOLVED_OPTIONS)
    private readonly options: ResolvedKnoxOptions,
    private readonly store: KnoxTokenStore,
    private readonly events: KnoxEventSink,
    private readonly clock: KnoxClock,
    private readonly cache: KnoxCache,
  ) {}

  /**
   * Authenticates a plaintext token: one query (token and user together, by the current digest
   * and any `legacyTokenDigests` at once), and a write only when an auto refresh or a
   * `lastUsedAt` update is due, or when the row was found by a legacy digest (it then moves to
   * the current digest in the same write).
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
    const { tokenCharacterLength } = this.options;
    if (
      typeof token !== 'string' ||
      !isWellFormedToken(
        token,
        tokenCharacterLength,
        MAXIMUM_TOKEN_PREFIX_LENGTH,
      )
    ) {
      throw new UnauthorizedException(KnoxMessages.INVALID_TOKEN);
    }
    const digest = digestToken(token);
    const now = this.clock.now();
    // 2. The cache (when on): a token the database vouched for recently costs no query. It
    //    misses past the token's expiry or `maxAge`, after any invalidation, and while its bus
    //    is down.
    const cached = this.cache.lookup(digest, now);
    if (cached) {
      if (!this.options.isUserActive(cached.user)) {
        throw new UnauthorizedException(KnoxMessages.USER_INACTIVE);
      }
      // One write per interval per instance: concurrent requests leave it to the first.
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
      rememberPresentedPrefix(
        cached.token,
        prefixOfPlaintext(token, tokenCharacterLength),
      );
      return cached;
    }
    const ticket = this.cache.ticket();
    // 3. The digests it may be stored under, and one query for the row and its user.
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
    // 4. Expiry (an expired row is deleted when seen) and the user.
    if (isExpired(record, now)) {
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
    if (!this.options.isUserActive(record.user)) {
      throw new UnauthorizedException(KnoxMessages.USER_INACTIVE);
    }
    // 5. The write a request may cause: last use, auto refresh, a legacy digest's upgrade; then
    //    the cache remembers the row, unless an invalidation came in meanwhile.
    const upgrade = digestsEqual(record.digest, digest) ? undefined : digest;
    const storedUnder = record.digest;
    await this.touch(record, now, client, upgrade);
    if (upgrade === undefined) {
      this.cache.remember(
        ticket,
        { user: record.user, token: record },
        this.store.userIdOf(record.user),
      );
    } else {
      this.cache.forgetTokens([storedUnder]);
    }
    rememberPresentedPrefix(
      record,
      prefixOfPlaintext(token, tokenCharacterLength),
    );
    return { user: record.user, token: record };
  }

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
    Object.assign(record, row, {
      lastUsedAt: now,
      lastUsedIp: lastUsedIp ?? record.lastUsedIp,
    });
    if (upgrade !== undefined) {
      record.digest = upgrade;
    }
    // A cached entry carries what was written (at most one write per interval per instance).
    this.cache.update(record);
    if (plan.expiry && row.expiry?.getTime() === plan.expiry.getTime()) {
      this.events.emit(KnoxEvents.TOKEN_REFRESHED, {
        ...this.events.tokenEvent(
          record,
          this.store.userIdOf(record.user),
          client,
        ),
        expiry: plan.expiry,
      });
    }
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
