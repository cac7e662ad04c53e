import {
  ForbiddenException,
  Inject,
  Injectable,
  NotFoundException,
  UnauthorizedException,
} from '@nestjs/common';
import { KnoxClock } from '../knox-clock.js';
import { KnoxCache } from '../cache/knox-cache.js';
import { KNOX_RESOLVED_OPTIONS } from '../knox.constants.js';
import { KnoxMessages } from '../knox.messages.js';
import { KnoxEventSink } from '../events/knox-event-sink.js';
import {
  KnoxEvents,
  type KnoxClientInfo,
  type KnoxRevokeReason,
} from '../events/knox.events.js';
import {
  checkPruneBatchSize,
  checkTokenSource,
  checkTokenName,
  type ResolvedKnoxOptions,
} from '../options/knox-options.js';
import type { KnoxToken } from '../store/knox-token.entity.js';
import {
  KnoxTokenStore,
  type KnoxUserTokens,
} from '../store/knox-token.store.js';
import { presentedPrefixOf } from '../tokens/knox-presented-prefix.js';
import {
  chooseEvictions,
  graceEnd,
  graceFitsLimit,
  isExpired,
  refreshedExpiry,
  rotatedExpiry,
} from './knox-session-rules.js';
import {
  limitOf,
  newToken,
  rotatedPrefix,
  type KnoxCreateTokenOptions,
  type KnoxIssuedToken,
} from './knox-new-token.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * `pruneExpired`'s default batch: small enough that one batch (one autocommit DELETE, which holds
 * its rows' locks until it commits) stays far under 100 ms on a loaded machine (docs/performance.md).
 */
const PRUNE_BATCH_SIZE = 100;

/** Options of {@link KnoxSessions.revokeAll} and {@link KnoxSessions.revokeById}. */
export interface KnoxRevokeOptions extends Partial<KnoxClientInfo> {
  /** Why (given to the events); `app` by default. */
  reason?: KnoxRevokeReason;
  /**
   * The token the request was authenticated with, when a user acts on their own sessions: the
   * call is refused (401) when that token has been retired by a rotation, revoked or has expired.
   */
  actor?: KnoxToken;
}

/**
 * Issuing and revoking: everything that creates or revokes a user's tokens runs through
 * {@link KnoxTokenStore.forUser}, one at a time per user, and re-reads the tokens it acts on
 * under that lock. A retired token (in its grace period) is refused by everything here but its
 * own logout.
 */
@Injectable()
export class KnoxSessions {
  constructor(
    @Inject(KNOX_RESOLVED_OPTIONS)
    private readonly options: ResolvedKnoxOptions,
    private readonly store: KnoxTokenStore,
    private readonly events: KnoxEventSink,
    private readonly clock: KnoxClock,
    private readonly cache: KnoxCache,
  ) {}

  /** Issues a token for `user` under the live-token limit. See `KnoxTokenService.create`. */
  async create(
    user: unknown,
    options: KnoxCreateTokenOptions = {},
  ): Promise<KnoxIssuedToken> {
    const userId = this.store.userIdOf(user);
    const source = checkTokenSource(options.source);
    const { limit, policy } = limitOf(options, this.options);
    const issued = newToken(
      this.store.userRef(userId),
      this.clock.now(),
      options,
      this.options,
    );
    const evicted = await this.store.forUser(userId, async (tokens) => {
      await this.checkActor(tokens, options.actor);
      let victims: KnoxToken[] = [];
      if (limit !== null) {
        const chosen = chooseEvictions(
          await tokens.live(this.clock.now()),
          limit,
          policy,
        );
        if (chosen === null) {
          throw new ForbiddenException(KnoxMessages.LIMIT_EXCEEDED);
        }
        victims = await tokens.delete(chosen.map((t) => t.digest));
      }
      await tokens.insert(issued.record);
      return victims;
    });
    this.cache.forgetTokens(evicted.map((t) => t.digest));
    issued.record.user = user;
    this.events.revoked(evicted, userId, 'evicted', options);
    this.events.created(issued.record, userId, source, options);
    return issued;
  }

  /**
   * Renames one of the user's tokens (`null` clears the name); 404 when the user has no such
   * token. See `KnoxTokenService.rename`.
   */
  async rename(
    userId: unknown,
    tokenId: string,
    name: string | null,
    options: Pick<KnoxRevokeOptions, 'actor'> = {},
  ): Promise<KnoxToken> {
    const checked = checkTokenName(name);
    if (typeof tokenId !== 'string' || !UUID.test(tokenId)) {
      throw new NotFoundException(KnoxMessages.TOKEN_NOT_FOUND);
    }
    const renamed = await this.store.forUser(userId, async (tokens) => {
      await this.checkActor(tokens, options.actor);
      const target = await tokens.findById(tokenId.toLowerCase());
      if (!target || isExpired(target, this.clock.now())) {
        return undefined;
      }
      return tokens.rename(target.id, checked);
    });
    if (!renamed) {
      throw new NotFoundException(KnoxMessages.TOKEN_NOT_FOUND);
    }
    return renamed;
  }

  /** The user's live tokens, newest first, each with its user loaded. */
  list(userId: unknown): Promise<KnoxToken[]> {
    return this.store.list(userId, this.clock.now());
  }

  /** Revokes one token (a retired one too: logging out is always allowed). */
  async revoke(
    token: KnoxToken,
    reason: KnoxRevokeReason = 'app',
    client: Partial<KnoxClientInfo> = {},
  ): Promise<boolean> {
    const userId = await this.ownerIdOf(token);
    if (userId === undefined) {
      return false;
    }
    const removed = await this.store
      .forUser(userId, (tokens) => tokens.delete([token.digest]))
      .finally(() => this.cache.forgetTokens([token.digest]));
    if (removed.length === 0) {
      return false;
    }
    this.events.revoked(removed, userId, reason, client);
    if (reason === 'logout') {
      this.events.emit(
        KnoxEvents.LOGOUT,
        this.events.tokenEvent(token, userId, client),
      );
    }
    return true;
  }

  /** Revokes one of the user's tokens by its public id; 404 when the user has no such token. */
  async revokeById(
    userId: unknown,
    tokenId: string,
    options: KnoxRevokeOptions = {},
  ): Promise<void> {
    if (typeof tokenId !== 'string' || !UUID.test(tokenId)) {
      throw new NotFoundException(KnoxMessages.TOKEN_NOT_FOUND);
    }
    const removed = await this.store.forUser(userId, async (tokens) => {
      await this.checkActor(tokens, options.actor);
      const target = await tokens.findById(tokenId.toLowerCase());
      return target ? tokens.delete([target.digest]) : [];
    });
    this.cache.forgetTokens(removed.map((t) => t.digest));
    if (removed.length === 0) {
      throw new NotFoundException(KnoxMessages.TOKEN_NOT_FOUND);
    }
    this.events.revoked(
      removed,
      userId,
      options.reason ?? 'revoked-by-id',
      options,
    );
  }

  /**
   * Revokes all of a user's tokens but `except` (a public id; one that is no token id spares
   * nothing, one of a retired or expired token is refused with 401).
   */
  async revokeAll(
    userId: unknown,
    options: KnoxRevokeOptions & { except?: string } = {},
  ): Promise<number> {
    const reason = options.reason ?? 'app';
    const except =
      typeof options.except === 'string' && UUID.test(options.except)
        ? options.except.toLowerCase()
        : undefined;
    const removed = await this.store.forUser(userId, async (tokens) => {
      await this.checkActor(tokens, options.actor);
      if (except !== undefined) {
        const kept = await tokens.findById(except);
        if (kept && !this.isUsable(kept)) {
          throw new UnauthorizedException(KnoxMessages.INVALID_TOKEN);
        }
      }
      return tokens.deleteAll(except);
    });
    this.cache.forgetTokens(removed.map((t) => t.digest));
    this.events.revoked(removed, userId, reason, options);
    if (reason === 'logout-all') {
      this.events.emit(KnoxEvents.LOGOUT_ALL, {
        userId,
        count: removed.length,
        ip: options.ip ?? null,
        userAgent: options.userAgent ?? null,
      });
    }
    return removed.length;
  }

  /** Extends a live token's expiry now. See `KnoxTokenService.refresh`. */
  async refresh(
    token: KnoxToken,
    client: Partial<KnoxClientInfo> = {},
  ): Promise<Date | null> {
    const now = this.clock.now();
    if (token.retiredAt || isExpired(token, now)) {
      throw new UnauthorizedException(KnoxMessages.INVALID_TOKEN);
    }
    if (!token.expiry) {
      return null;
    }
    const userId = await this.ownerIdOf(token);
    if (userId === undefined) {
      throw new UnauthorizedException(KnoxMessages.INVALID_TOKEN);
    }
    const expiry = await this.store.forUser(userId, async (tokens) => {
      const row = await this.usableRow(tokens, token, now);
      const next = refreshedExpiry(row, now, this.options);
      if (!row.expiry || !next || next.getTime() <= row.expiry.getTime()) {
        return row.expiry;
      }
      return (await tokens.extend(row.digest, next)) ? next : row.expiry;
    });
    if (expiry && token.expiry && expiry.getTime() > token.expiry.getTime()) {
      token.expiry = expiry;
      this.cache.update(token);
      this.events.emit(KnoxEvents.TOKEN_REFRESHED, {
        ...this.events.tokenEvent(token, userId, client),
        expiry,
      });
    }
    return token.expiry;
  }

  /** A new token replaces `token`. See `KnoxTokenService.rotate`. */
  async rotate(
    token: KnoxToken,
    client: Partial<KnoxClientInfo> = {},
  ): Promise<KnoxIssuedToken> {
    const now = this.clock.now();
    if (token.retiredAt || isExpired(token, now)) {
      throw new UnauthorizedException(KnoxMessages.INVALID_TOKEN);
    }
    const user = token.user ?? (await this.store.ownerOf(token.digest));
    if (user === undefined || user === null) {
      throw new UnauthorizedException(KnoxMessages.INVALID_TOKEN);
    }
    const userId = this.store.userIdOf(user);
    const prefix = rotatedPrefix(presentedPrefixOf(token), this.options);
    const { issued, graceUntil } = await this.store.forUser(
      userId,
      async (tokens) => {
        const row = await this.usableRow(tokens, token, now);
        const successor = this.successorOf(row, userId, prefix, now, client);
        const until = await this.retireOrDelete(tokens, row, now);
        await tokens.insert(successor.record);
        return { issued: successor, graceUntil: until };
      },
    );
    this.cache.forgetTokens([token.digest]);
    if (graceUntil) {
      token.expiry = graceUntil;
      token.retiredAt = now;
    }
    issued.record.user = user;
    this.announceRotation(token, issued, userId, graceUntil, client);
    return issued;
  }

  /**
   * The token that replaces `row` (not stored yet): the same session (name, device, abilities,
   * creation time), a fresh lifetime, and this rotation as its first use.
   */
  private successorOf(
    row: KnoxToken,
    userId: unknown,
    prefix: string,
    now: Date,
    client: Partial<KnoxClientInfo>,
  ): KnoxIssuedToken {
    const successor = newToken(
      this.store.userRef(userId),
      now,
      {
        ttl: row.ttl ?? (row.expiry ? this.options.tokenTtl : null),
        prefix,
        name: row.name,
        ip: row.ip,
        userAgent: row.userAgent,
        abilities: row.abilities,
      },
      this.options,
    );
    Object.assign(successor.record, {
      created: row.created,
      expiry: rotatedExpiry(row, now, this.options),
      // The cap of the first creation carries over: rotating never extends a token's life.
      maxExpiry: row.maxExpiry,
      // This rotation is the successor's first use.
      lastUsedIp: client.ip?.slice(0, 45) ?? row.lastUsedIp,
    });
    return successor;
  }

  /**
   * Retires the rotated row for its grace period when there is one and it fits the token
   * limit, else deletes it. Returns the end of the grace period, or `null` when it was deleted.
   */
  private async retireOrDelete(
    tokens: KnoxUserTokens,
    row: KnoxToken,
    now: Date,
  ): Promise<Date | null> {
    let until = graceEnd(row, now, this.options.rotationGracePeriod);
    if (
      until &&
      !graceFitsLimit(
        (await tokens.live(now)).length,
        this.options.tokenLimitPerUser,
      )
    ) {
      until = null;
    }
    if (until) {
      await tokens.retire(row.digest, until, now);
    } else {
      await tokens.delete([row.digest]);
    }
    return until;
  }

  /** The events of a rotation: rotated, revoked (when no grace period was left), created. */
  private announceRotation(
    token: KnoxToken,
    issued: KnoxIssuedToken,
    userId: unknown,
    graceUntil: Date | null,
    client: Partial<KnoxClientInfo>,
  ): void {
    this.events.emit(KnoxEvents.TOKEN_ROTATED, {
      ...this.events.tokenEvent(token, userId, client),
      newTokenId: issued.record.id,
      oldTokenValidUntil: graceUntil,
      abilities: issued.record.abilities,
    });
    if (!graceUntil) {
      this.events.revoked([token], userId, 'rotated', client);
    }
    this.events.created(issued.record, userId, 'rotate', client);
  }

  /** Deletes expired tokens in batches. See `KnoxTokenService.pruneExpired`. */
  async pruneExpired(options: { batchSize?: number } = {}): Promise<number> {
    const batchSize = checkPruneBatchSize(
      options.batchSize ?? PRUNE_BATCH_SIZE,
    );
    const now = this.clock.now();
    let total = 0;
    for (;;) {
      const deleted = await this.store.deleteExpiredBatch(now, batchSize);
      total += deleted;
      if (deleted < batchSize) {
        return total;
      }
    }
  }

  /** The token's row as it is now, under the lock: 401 unless it is live and not retired. */
  private async usableRow(
    tokens: KnoxUserTokens,
    token: KnoxToken,
    now: Date,
  ): Promise<KnoxToken> {
    const row = await tokens.find(token.digest);
    if (!row || !this.isUsable(row, now)) {
      throw new UnauthorizedException(KnoxMessages.INVALID_TOKEN);
    }
    return row;
  }

  private async checkActor(
    tokens: KnoxUserTokens,
    actor: KnoxToken | undefined,
  ): Promise<void> {
    if (actor !== undefined) {
      await this.usableRow(tokens, actor, this.clock.now());
    }
  }

  private isUsable(row: KnoxToken, now = this.clock.now()): boolean {
    return !row.retiredAt && !isExpired(row, now);
  }

  /** The owner's id of a token whose user may not be loaded; `undefined` when it is gone. */
  private async ownerIdOf(token: KnoxToken): Promise<unknown> {
    const user = token.user ?? (await this.store.ownerOf(token.digest));
    return user === undefined || user === null
      ? undefined
      : this.store.userIdOf(user);
  }
}
