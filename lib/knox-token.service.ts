import {
  ForbiddenException,
  HttpException,
  Inject,
  Injectable,
  Logger,
  NotFoundException,
  OnModuleInit,
  ServiceUnavailableException,
  UnauthorizedException,
} from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { randomUUID } from 'node:crypto';
import {
  EntityManager,
  In,
  IsNull,
  MoreThanOrEqual,
  Repository,
  type FindOptionsWhere,
} from 'typeorm';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata.js';
import { KnoxClock } from './knox-clock.js';
import { KnoxCache } from './auth/cache/knox-cache.js';
import { KnoxMessages } from './knox.messages.js';
import {
  KNOX_MODULE_EXTRAS,
  KNOX_RESOLVED_OPTIONS,
  KNOX_TOKEN_REPOSITORY,
  MAXIMUM_TOKEN_PREFIX_LENGTH,
} from './knox.constants.js';
import { KnoxToken } from './store/knox-token.entity.js';
import {
  KnoxEvents,
  type KnoxClientInfo,
  type KnoxRevokeReason,
  type KnoxTokenEvent,
} from './events/knox.events.js';
import type {
  KnoxModuleExtras,
  KnoxTokenLimitPolicy,
} from './options/knox-module-options.interface.js';
import { POLICIES, type ResolvedKnoxOptions } from './options/knox-options.js';
import {
  digestToken,
  digestsEqual,
  generateToken,
  CHECKSUM_LENGTH,
  CHECKSUM_RANDOM_LENGTH,
  isChecksumPrefix,
  isWellFormedToken,
  tokenKeyOf,
} from './tokens/knox-token-format.js';

/** PostgreSQL's SQLSTATE for a foreign key violation. */
const FOREIGN_KEY_VIOLATION = '23503';

/** The SQLSTATE of a driver error (as TypeORM wraps it), if any. */
function driverCode(error: unknown): unknown {
  const e = error as { code?: unknown; driverError?: { code?: unknown } };
  return e?.driverError?.code ?? e?.code;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What a successful authentication yields. */
export interface KnoxAuthResult<User = any> {
  /** The token's owner, as loaded with the token (an instance of `userEntity`). */
  user: User;
  /** The token's record (never the plaintext). */
  token: KnoxToken<User>;
}

/** Options of {@link KnoxTokenService.create}; unset ones fall back to the module's options. */
export interface KnoxCreateTokenOptions extends Partial<KnoxClientInfo> {
  /** Lifetime in ms; `null` never expires. */
  ttl?: number | null;
  /** Token prefix (at most 10 characters). */
  prefix?: string;
  /** A name for the token, e.g. the device. */
  name?: string | null;
  /** Live-token limit for this user; `null` for none. */
  limit?: number | null;
  /** What to do when the limit is reached. */
  policy?: KnoxTokenLimitPolicy;
}

/** A newly issued token: the plaintext (shown once) and its stored record. */
export interface KnoxIssuedToken<User = any> {
  /** The plaintext token. Give it to the client; it is stored nowhere. */
  token: string;
  /** The stored record (digest only). */
  record: KnoxToken<User>;
}

interface EventSink {
  emit(event: string, payload: unknown): unknown;
}

/**
 * Creates, authenticates, refreshes, rotates and revokes tokens. Apps use it for server-side
 * work, e.g. revoking every token of a user whose password changed:
 *
 * @example
 * await this.knox.revokeAll(user.id, { reason: 'app' });
 */
@Injectable()
export class KnoxTokenService implements OnModuleInit {
  private readonly logger = new Logger('KnoxTokenService');
  private events: EventSink | undefined;
  /** The prefix of the plaintext each authenticated record was presented with (for rotate). */
  private readonly presentedPrefixes = new WeakMap<KnoxToken, string>();
  /** `legacyTokenDigests` entries already reported as broken (logged once each). */
  private readonly reportedLegacySchemes = new Set<number>();

  constructor(
    @Inject(KNOX_TOKEN_REPOSITORY)
    private readonly repository: Repository<KnoxToken>,
    @Inject(KNOX_RESOLVED_OPTIONS)
    private readonly options: ResolvedKnoxOptions,
    @Inject(KNOX_MODULE_EXTRAS)
    private readonly extras: KnoxModuleExtras,
    private readonly clock: KnoxClock,
    private readonly moduleRef: ModuleRef,
    private readonly cache: KnoxCache,
  ) {}

  /** Checks the user entity's metadata, and finds `EventEmitter2` if the app set one up. */
  async onModuleInit(): Promise<void> {
    this.userPrimaryColumn();
    try {
      const { EventEmitter2 } = await import('@nestjs/event-emitter');
      this.events = this.moduleRef.get(EventEmitter2, { strict: false });
    } catch {
      this.events = undefined;
    }
  }

  /**
   * Authenticates a plaintext token: one query (token and user together, by the current digest
   * and any `legacyTokenDigests` at once), and a write only when an auto refresh or a
   * `lastUsedAt` update is due, or when the row was found by a legacy digest (it is then moved
   * to the current digest in the same write).
   *
   * @throws UnauthorizedException for an unknown, malformed (or not a string) or expired token,
   *   or an inactive user
   * @throws ServiceUnavailableException when the database cannot be reached
   */
  async authenticate(
    token: string,
    client: Partial<KnoxClientInfo> = {},
  ): Promise<KnoxAuthResult> {
    if (
      typeof token !== 'string' ||
      !isWellFormedToken(
        token,
        this.options.tokenCharacterLength,
        MAXIMUM_TOKEN_PREFIX_LENGTH,
      )
    ) {
      throw new UnauthorizedException(KnoxMessages.INVALID_TOKEN);
    }
    const digest = digestToken(token);
    const now = this.clock.now();
    const cached = this.cache.lookup(digest);
    if (cached) {
      if (!this.options.isUserActive(cached.user)) {
        throw new UnauthorizedException(KnoxMessages.USER_INACTIVE);
      }
      await this.touch(cached.token, now, client);
      this.presentedPrefixes.set(cached.token, this.prefixOfPlaintext(token));
      return cached;
    }
    const ticket = this.cache.ticket();
    const legacy = this.legacyDigestsOf(token, digest);
    const query = this.repository
      .createQueryBuilder('token')
      .innerJoinAndSelect('token.user', 'user');
    const rows = await this.db(async () => {
      if (legacy.length === 0) {
        const row = await query
          .where('token.digest = :digest', { digest })
          .getOne();
        return row ? [row] : [];
      }
      return query
        .where('token.digest IN (:...digests)', {
          digests: [digest, ...legacy],
        })
        .getMany();
    });
    const record = this.matchDigest(rows, digest, legacy);
    if (!record) {
      throw new UnauthorizedException(KnoxMessages.INVALID_TOKEN);
    }
    if (record.expiry && record.expiry.getTime() < now.getTime()) {
      const result = await this.db(() =>
        this.repository.delete({ digest: record.digest }),
      );
      this.cache.forgetTokens([record.digest]);
      if (result.affected) {
        this.emit(KnoxEvents.TOKEN_EXPIRED, this.tokenEvent(record, client));
      }
      throw new UnauthorizedException(KnoxMessages.INVALID_TOKEN);
    }
    if (!this.options.isUserActive(record.user)) {
      throw new UnauthorizedException(KnoxMessages.USER_INACTIVE);
    }
    const upgrade = digestsEqual(record.digest, digest) ? undefined : digest;
    const legacyDigest = record.digest;
    await this.touch(record, now, client, upgrade);
    if (upgrade === undefined) {
      this.cache.remember(
        ticket,
        { user: record.user, token: record },
        this.userIdOf(record.user),
      );
    } else {
      this.cache.forgetTokens([legacyDigest]);
    }
    this.presentedPrefixes.set(record, this.prefixOfPlaintext(token));
    return { user: record.user, token: record };
  }

  /**
   * Issues a token for `user`, enforcing the live-token limit atomically (the user's row is
   * locked while the tokens are counted). Emits {@link KnoxEvents.LOGIN}.
   *
   * @throws ForbiddenException when the limit is reached and the policy is `reject`
   * @throws UnauthorizedException "User inactive or deleted." when the user's row does not exist
   * @throws Error when an option is invalid (a TTL, prefix, limit or policy the module's options
   *   would refuse)
   */
  async create(
    user: unknown,
    options: KnoxCreateTokenOptions = {},
  ): Promise<KnoxIssuedToken> {
    const userId = this.userIdOf(user);
    const limit =
      options.limit !== undefined
        ? options.limit
        : this.options.tokenLimitPerUser;
    const policy = options.policy ?? this.options.tokenLimitPolicy;
    if (limit !== null && (!Number.isInteger(limit) || limit < 1)) {
      throw new Error(
        `KnoxTokenService: a token limit must be a whole number >= 1 or null; got ${String(limit)}.`,
      );
    }
    if (!POLICIES.includes(policy)) {
      throw new Error(
        `KnoxTokenService: a token limit policy must be one of ${POLICIES.join(', ')}; got ${String(policy)}.`,
      );
    }
    const issued = this.build(userId, options);
    const issue = async (manager: EntityManager): Promise<KnoxToken[]> => {
      let evicted: KnoxToken[] = [];
      if (limit !== null) {
        evicted = await this.makeRoom(manager, userId, limit, policy);
      }
      try {
        await manager
          .getRepository(this.repository.target)
          .insert(issued.record);
      } catch (error) {
        // The user's row is gone (deleted since the credentials were checked).
        if (driverCode(error) === FOREIGN_KEY_VIOLATION) {
          throw new UnauthorizedException(KnoxMessages.USER_INACTIVE);
        }
        throw error;
      }
      return evicted;
    };
    // With a limit, READ COMMITTED whatever the database's default: the count after the lock
    // must see the tokens that the logins it waited for committed (a REPEATABLE READ snapshot,
    // taken before the wait, would not).
    const evicted = await this.db(() =>
      limit === null
        ? this.repository.manager.transaction(issue)
        : this.repository.manager.transaction('READ COMMITTED', issue),
    );
    issued.record.user = user;
    this.cache.forgetTokens(evicted.map((t) => t.digest));
    for (const token of evicted) {
      this.emitRevoked(token, userId, 'evicted', options);
    }
    this.emit(KnoxEvents.LOGIN, {
      ...this.tokenEvent(issued.record, options, userId),
      expiry: issued.record.expiry,
      name: issued.record.name,
    });
    return issued;
  }

  /**
   * The user's live tokens (expired ones left out), newest first, each with its `user` loaded
   * so that it can be passed to {@link refresh}, {@link rotate} or {@link revoke}.
   */
  async list(userId: unknown): Promise<KnoxToken[]> {
    const now = this.clock.now();
    const user = this.userRef(userId);
    return this.db(() =>
      this.repository.find({
        where: [
          { user, expiry: IsNull() },
          { user, expiry: MoreThanOrEqual(now) },
        ] as FindOptionsWhere<KnoxToken>[],
        relations: { user: true },
        order: { created: 'DESC', id: 'ASC' },
      }),
    );
  }

  /**
   * Revokes one token. Emits {@link KnoxEvents.TOKEN_REVOKED} (and {@link KnoxEvents.LOGOUT}
   * when the reason is `logout`).
   *
   * @returns whether the token still existed
   */
  async revoke(
    token: KnoxToken,
    reason: KnoxRevokeReason = 'app',
    client: Partial<KnoxClientInfo> = {},
  ): Promise<boolean> {
    const result = await this.db(() =>
      this.repository.delete({ digest: token.digest }),
    );
    this.cache.forgetTokens([token.digest]);
    if (!result.affected) {
      return false;
    }
    const userId = token.user ? this.userIdOf(token.user) : undefined;
    this.emitRevoked(token, userId, reason, client);
    if (reason === 'logout') {
      this.emit(KnoxEvents.LOGOUT, this.tokenEvent(token, client, userId));
    }
    return true;
  }

  /**
   * Revokes one of the user's tokens by its public id.
   *
   * @throws NotFoundException when the user has no such token
   */
  async revokeById(
    userId: unknown,
    tokenId: string,
    reason: KnoxRevokeReason = 'revoked-by-id',
    client: Partial<KnoxClientInfo> = {},
  ): Promise<void> {
    if (typeof tokenId !== 'string' || !UUID.test(tokenId)) {
      throw new NotFoundException(KnoxMessages.TOKEN_NOT_FOUND);
    }
    const removed = await this.deleteReturning(userId, (qb) =>
      qb.andWhere('id = :tokenId', { tokenId: tokenId.toLowerCase() }),
    );
    if (removed.length === 0) {
      throw new NotFoundException(KnoxMessages.TOKEN_NOT_FOUND);
    }
    for (const token of removed) {
      this.emitRevoked(token, userId, reason, client);
    }
  }

  /**
   * Revokes all of a user's tokens, never-expiring ones too, optionally sparing one (by public
   * id; an `except` that is no token id spares nothing). Use it when a password changes or an
   * account is disabled. Emits
   * {@link KnoxEvents.TOKEN_REVOKED} for each, and {@link KnoxEvents.LOGOUT_ALL} when the
   * reason is `logout-all`.
   *
   * @returns how many tokens were revoked
   */
  async revokeAll(
    userId: unknown,
    options: {
      except?: string;
      reason?: KnoxRevokeReason;
    } & Partial<KnoxClientInfo> = {},
  ): Promise<number> {
    const reason = options.reason ?? 'app';
    const except = options.except;
    const removed = await this.deleteReturning(userId, (qb) =>
      typeof except === 'string' && UUID.test(except)
        ? qb.andWhere('id <> :except', { except: except.toLowerCase() })
        : qb,
    );
    for (const token of removed) {
      this.emitRevoked(token, userId, reason, options);
    }
    if (reason === 'logout-all') {
      this.emit(KnoxEvents.LOGOUT_ALL, {
        userId,
        count: removed.length,
        ip: options.ip ?? null,
        userAgent: options.userAgent ?? null,
      });
    }
    return removed.length;
  }

  /**
   * Extends a token's expiry to `now + its TTL` (capped at `created + autoRefreshMaxTtl`) now,
   * whether or not `autoRefresh` is on. A token that never expires, and one retired by
   * {@link rotate} (it lives out its grace period; also when the rotation came after `token` was
   * read), are left as they are. Emits
   * {@link KnoxEvents.TOKEN_REFRESHED} when the expiry moved.
   *
   * @returns the token's expiry afterwards (`null` for a token that never expires)
   * @throws UnauthorizedException when the token has expired or was revoked meanwhile
   */
  async refresh(
    token: KnoxToken,
    client: Partial<KnoxClientInfo> = {},
  ): Promise<Date | null> {
    if (!token.expiry) {
      return null;
    }
    const now = this.clock.now();
    if (token.expiry.getTime() < now.getTime()) {
      // Expired since it was read: expired tokens are never revived.
      throw new UnauthorizedException(KnoxMessages.INVALID_TOKEN);
    }
    if (token.retiredAt) {
      return token.expiry;
    }
    const next = this.refreshedExpiry(token, now);
    if (next && next.getTime() > token.expiry.getTime()) {
      await this.write(token, { expiry: next }, client);
    }
    return token.expiry;
  }

  /**
   * Issues a new token with the same name, TTL, prefix and metadata (user agent, IP, creation
   * time, so `autoRefreshMaxTtl` still bounds the session) and retires the old one. The old one
   * keeps working for `rotationGracePeriod` (never past its own expiry, and never refreshed),
   * or is revoked at once when the grace period is 0. Emits {@link KnoxEvents.TOKEN_ROTATED},
   * and {@link KnoxEvents.TOKEN_REVOKED} (reason `rotated`) when the old one is revoked at once.
   *
   * @throws UnauthorizedException when the old token has expired or was revoked meanwhile
   */
  async rotate(
    token: KnoxToken,
    client: Partial<KnoxClientInfo> = {},
  ): Promise<KnoxIssuedToken> {
    const now = this.clock.now();
    if (token.expiry && token.expiry.getTime() < now.getTime()) {
      // Expired since it was read: an expired token never mints a new one.
      throw new UnauthorizedException(KnoxMessages.INVALID_TOKEN);
    }
    const user = token.user ?? (await this.ownerOf(token));
    const userId = this.userIdOf(user);
    const issued = this.build(userId, {
      ttl: token.ttl ?? (token.expiry ? this.options.tokenTtl : null),
      prefix: this.prefixOf(token),
      name: token.name,
      ip: token.ip,
      userAgent: token.userAgent,
    });
    let expiry: Date | null = null;
    if (token.expiry) {
      expiry = this.refreshedExpiry(token, now) ?? token.expiry;
      if (expiry.getTime() < token.expiry.getTime()) {
        expiry = token.expiry;
      }
    }
    Object.assign(issued.record, { created: token.created, expiry });
    const grace = this.options.rotationGracePeriod;
    let graceUntil: Date | null = null;
    if (grace > 0) {
      graceUntil = new Date(now.getTime() + grace);
      if (token.expiry && token.expiry < graceUntil) {
        graceUntil = token.expiry;
      }
    }
    await this.db(() =>
      this.repository.manager.transaction(async (manager) => {
        const repo = manager.getRepository(this.repository.target);
        const result = graceUntil
          ? await repo.update(
              { digest: token.digest },
              { expiry: graceUntil, retiredAt: token.retiredAt ?? now },
            )
          : await repo.delete({ digest: token.digest });
        if (!result.affected) {
          throw new UnauthorizedException(KnoxMessages.INVALID_TOKEN);
        }
        await repo.insert(issued.record);
      }),
    );
    this.cache.forgetTokens([token.digest]);
    if (graceUntil) {
      token.expiry = graceUntil;
      token.retiredAt ??= now;
    }
    issued.record.user = user;
    this.emit(KnoxEvents.TOKEN_ROTATED, {
      ...this.tokenEvent(token, client, userId),
      newTokenId: issued.record.id,
      oldTokenValidUntil: graceUntil,
    });
    if (!graceUntil) {
      this.emitRevoked(token, userId, 'rotated', client);
    }
    return issued;
  }

  /**
   * Deletes expired tokens in batches of `batchSize` (a whole number >= 1; default 1000), off
   * the request path (call it from a scheduled job). Emits no events.
   *
   * @returns how many tokens were deleted
   */
  async pruneExpired(options: { batchSize?: number } = {}): Promise<number> {
    const batchSize = options.batchSize ?? 1000;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new Error(
        `KnoxTokenService: pruneExpired's batchSize must be a whole number >= 1; got ${String(batchSize)}.`,
      );
    }
    const now = this.clock.now();
    const table = this.repository.metadata.tablePath;
    let total = 0;
    for (;;) {
      const rows: unknown = await this.db(() =>
        this.repository.query(
          `DELETE FROM ${this.quote(table)} WHERE digest IN (SELECT digest FROM ${this.quote(table)} WHERE expiry < $1 LIMIT $2)`,
          [now, batchSize],
        ),
      );
      const deleted = Array.isArray(rows) ? Number(rows[1] ?? 0) : 0;
      total += deleted;
      if (deleted < batchSize) {
        return total;
      }
    }
  }

  /**
   * Drops a user's tokens from this instance's cache (and, with the Redis bus, from the
   * others'), for state the database triggers cannot see: e.g. an `isUserActive` that reads
   * another table, or a user changed outside the user table. A no-op without the cache.
   */
  invalidateUser(userId: unknown): void {
    this.cache.forgetUser(userId);
  }

  /** The primary key of a user entity instance. */
  userIdOf(user: unknown): unknown {
    const id = this.userPrimaryColumn().getEntityValue(user as object);
    if (id === undefined || id === null) {
      throw new Error(
        'KnoxTokenService: the user has no primary key value; pass a loaded user entity.',
      );
    }
    return id;
  }

  private build(
    userId: unknown,
    options: KnoxCreateTokenOptions,
  ): KnoxIssuedToken {
    const now = this.clock.now();
    const ttl = options.ttl !== undefined ? options.ttl : this.options.tokenTtl;
    if (
      ttl !== null &&
      (typeof ttl !== 'number' ||
        !(ttl >= 0) ||
        Number.isNaN(new Date(now.getTime() + ttl).getTime()))
    ) {
      throw new Error(
        `KnoxTokenService: a token TTL must be a number of ms >= 0 that gives a valid expiry date, or null (never expires); got ${String(ttl)}.`,
      );
    }
    const prefix = options.prefix ?? this.options.tokenPrefix;
    if (
      typeof prefix !== 'string' ||
      prefix.length > MAXIMUM_TOKEN_PREFIX_LENGTH ||
      !/^[\x21-\x7e]*$/.test(prefix)
    ) {
      throw new Error(
        `KnoxTokenService: a token prefix must be at most ${MAXIMUM_TOKEN_PREFIX_LENGTH} printable ASCII characters without spaces; got '${String(prefix)}'.`,
      );
    }
    if (
      this.options.tokenFormat === 'checksum' &&
      !isChecksumPrefix(prefix, MAXIMUM_TOKEN_PREFIX_LENGTH)
    ) {
      // Such a token would fail the offline shape check and never authenticate.
      throw new Error(
        `KnoxTokenService: with tokenFormat 'checksum', a token prefix must be at least 4 characters and end in '_'; got '${prefix}'.`,
      );
    }
    const name = options.name ?? null;
    if (name !== null && (typeof name !== 'string' || name.length > 200)) {
      throw new Error(
        `KnoxTokenService: a token name must be a string of at most 200 characters (the column's size) or null.`,
      );
    }
    const token = generateToken(
      this.options.tokenFormat,
      prefix,
      this.options.tokenCharacterLength,
    );
    const record = Object.assign(new KnoxToken(), {
      digest: digestToken(token),
      tokenKey: tokenKeyOf(token),
      id: randomUUID(),
      user: this.userRef(userId),
      created: now,
      expiry: ttl === null ? null : new Date(now.getTime() + ttl),
      ttl,
      name,
      userAgent: options.userAgent?.slice(0, 512) ?? null,
      ip: options.ip?.slice(0, 45) ?? null,
      // Login is a use; it also puts last use and expiry in the same phase, so the two writes
      // a request may cause (last use, auto refresh) fall due together.
      lastUsedAt: now,
      retiredAt: null,
    });
    return { token, record };
  }

  private async makeRoom(
    manager: EntityManager,
    userId: unknown,
    limit: number,
    policy: KnoxTokenLimitPolicy,
  ): Promise<KnoxToken[]> {
    const pk = this.userPrimaryColumn();
    const owner = await manager
      .createQueryBuilder(this.extras.userEntity, 'u')
      .select(`u.${pk.propertyPath}`)
      .where(`u.${pk.propertyPath} = :userId`, { userId })
      .setLock('pessimistic_write')
      .getOne();
    if (!owner) {
      throw new UnauthorizedException(KnoxMessages.USER_INACTIVE);
    }
    const now = this.clock.now();
    const user = this.userRef(userId);
    const repo = manager.getRepository(this.repository.target);
    const live = await repo.find({
      where: [
        { user, expiry: IsNull() },
        { user, expiry: MoreThanOrEqual(now) },
      ] as FindOptionsWhere<KnoxToken>[],
      order: { created: 'ASC' },
    });
    if (live.length < limit) {
      return [];
    }
    if (policy === 'reject') {
      throw new ForbiddenException(KnoxMessages.LIMIT_EXCEEDED);
    }
    // Tokens retired by a rotation (living out their grace period) go first.
    const retired = (t: KnoxToken) => (t.retiredAt ? 0 : 1);
    if (policy === 'evict-least-recently-used') {
      const lastUse = (t: KnoxToken) => (t.lastUsedAt ?? t.created).getTime();
      live.sort((a, b) => retired(a) - retired(b) || lastUse(a) - lastUse(b));
    } else {
      live.sort((a, b) => retired(a) - retired(b));
    }
    const evicted = live.slice(0, live.length - limit + 1);
    await repo.delete({ digest: In(evicted.map((t) => t.digest)) });
    return evicted;
  }

  /**
   * The digests the legacy schemes give `token`: strings only (without NUL characters), without
   * duplicates or the current digest. A scheme that throws or returns something else counts as no match, and is
   * logged once (it is a bug in the app, and the token is the client's input).
   */
  private legacyDigestsOf(token: string, current: string): string[] {
    const digests: string[] = [];
    this.options.legacyTokenDigests.forEach((scheme, index) => {
      let digest: unknown;
      try {
        digest = scheme(token);
      } catch (error) {
        this.reportLegacyScheme(
          index,
          `threw: ${(error as Error)?.message ?? String(error)}`,
        );
        return;
      }
      if (digest === null || digest === undefined) {
        return;
      }
      if (typeof digest !== 'string' || digest.length === 0) {
        this.reportLegacyScheme(
          index,
          `returned ${typeof digest === 'string' ? 'an empty string' : (digest?.constructor?.name ?? typeof digest)} instead of the stored digest as a string (or null)`,
        );
        return;
      }
      if (digest.includes('\u0000')) {
        // No text column holds a NUL, and PostgreSQL would refuse the whole query for it.
        this.reportLegacyScheme(
          index,
          'returned a string with a NUL character (a binary digest? return it as hex, as stored)',
        );
        return;
      }
      if (digest !== current && !digests.includes(digest)) {
        digests.push(digest);
      }
    });
    return digests;
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

  /**
   * The row the token owns among those found, compared in constant time: the one stored under
   * the current digest, else one stored under a legacy digest.
   */
  private matchDigest(
    rows: KnoxToken[],
    current: string,
    legacy: string[],
  ): KnoxToken | undefined {
    let byCurrent: KnoxToken | undefined;
    let byLegacy: KnoxToken | undefined;
    for (const row of rows) {
      if (digestsEqual(row.digest, current)) {
        byCurrent ??= row;
      }
      let isLegacy = false;
      for (const digest of legacy) {
        isLegacy = digestsEqual(row.digest, digest) || isLegacy;
      }
      if (isLegacy) {
        byLegacy ??= row;
      }
    }
    return byCurrent ?? byLegacy;
  }

  /**
   * The write a request may cause, at most one per interval: `lastUsedAt` is due once more than
   * `lastUsedUpdateInterval` has passed, an auto refresh once it would move the expiry by more
   * than `minRefreshInterval`. Whenever either is due, one UPDATE writes both, which keeps them
   * in phase so that they keep falling due together. A row found by a legacy digest is always
   * written: the same UPDATE moves it to the current digest (`upgradeTo`).
   */
  private async touch(
    token: KnoxToken,
    now: Date,
    client: Partial<KnoxClientInfo>,
    upgradeTo?: string,
  ): Promise<void> {
    let next: Date | null = null;
    if (this.options.autoRefresh && token.expiry && !token.retiredAt) {
      next = this.refreshedExpiry(token, now);
    }
    const refreshDue =
      next !== null &&
      token.expiry !== null &&
      next.getTime() - token.expiry.getTime() > this.options.minRefreshInterval;
    const useDue =
      !token.lastUsedAt ||
      now.getTime() - token.lastUsedAt.getTime() >
        this.options.lastUsedUpdateInterval;
    if (!refreshDue && !useDue && upgradeTo === undefined) {
      return;
    }
    const changes: Partial<Pick<KnoxToken, 'expiry' | 'lastUsedAt'>> = {
      lastUsedAt: now,
    };
    if (next && token.expiry && next.getTime() > token.expiry.getTime()) {
      changes.expiry = next;
    }
    await this.write(token, changes, client, upgradeTo);
  }

  /**
   * Writes changes to a token that must still exist; only then are they applied in memory.
   * With `upgradeTo`, the row also moves from its legacy digest to that (current) one. The
   * row is matched by either digest, so when concurrent first uses of a legacy token race, the
   * later UPDATEs find the row the first one moved (PostgreSQL re-checks the condition on the
   * new row version) instead of missing it: every request succeeds and the row stays one.
   *
   * A new expiry is written only to a row that is not retired, so a token rotated after it was
   * read lives out its grace period instead of being refreshed back to a full TTL. When that
   * happens, the rest is written on its own and the row's expiry is read back.
   */
  private async write(
    token: KnoxToken,
    changes: Partial<Pick<KnoxToken, 'expiry' | 'lastUsedAt'>>,
    client: Partial<KnoxClientInfo>,
    upgradeTo?: string,
  ): Promise<void> {
    const digests =
      upgradeTo === undefined ? [token.digest] : [token.digest, upgradeTo];
    const values =
      upgradeTo === undefined ? changes : { ...changes, digest: upgradeTo };
    const result = await this.db(() =>
      this.repository.update(
        changes.expiry
          ? { digest: In(digests), retiredAt: IsNull() }
          : { digest: In(digests) },
        values,
      ),
    );
    if (result.affected) {
      Object.assign(token, values);
      this.cache.update(token);
      if (changes.expiry) {
        this.emit(KnoxEvents.TOKEN_REFRESHED, {
          ...this.tokenEvent(token, client),
          expiry: changes.expiry,
        });
      }
      return;
    }
    this.cache.forgetTokens(digests);
    if (!changes.expiry) {
      throw new UnauthorizedException(KnoxMessages.INVALID_TOKEN);
    }
    const { expiry: _refused, ...rest } = values;
    const row = await this.db(async () => {
      if (Object.keys(rest).length === 0) {
        return this.repository.findOne({
          where: { digest: In(digests) },
          select: { digest: true, expiry: true, retiredAt: true },
        });
      }
      const retired = await this.repository
        .createQueryBuilder()
        .update()
        .set(rest)
        .where('digest IN (:...digests)', { digests })
        .returning(['expiry', 'retired_at'])
        .execute();
      const raw = (Array.isArray(retired.raw) ? retired.raw[0] : undefined) as
        { expiry: Date | null; retired_at: Date | null } | undefined;
      return raw && { expiry: raw.expiry, retiredAt: raw.retired_at };
    });
    if (!row) {
      throw new UnauthorizedException(KnoxMessages.INVALID_TOKEN);
    }
    Object.assign(token, rest, {
      expiry: row.expiry,
      retiredAt: row.retiredAt,
    });
  }

  private refreshedExpiry(token: KnoxToken, now: Date): Date | null {
    const ttl = token.ttl ?? this.options.tokenTtl;
    if (ttl === null) {
      return null;
    }
    let next = now.getTime() + ttl;
    if (this.options.autoRefreshMaxTtl !== null) {
      next = Math.min(
        next,
        token.created.getTime() + this.options.autoRefreshMaxTtl,
      );
    }
    return new Date(next);
  }

  /**
   * The prefix a rotated token gets: the one the client presented when the app issues several
   * (`getTokenPrefix`) and it suits the current format, else the configured one.
   */
  private prefixOf(token: KnoxToken): string {
    const configured = this.options.tokenPrefix;
    const presented = this.presentedPrefixes.get(token);
    if (
      presented === undefined ||
      presented === configured ||
      !this.options.raw.getTokenPrefix
    ) {
      return configured;
    }
    const suits =
      this.options.tokenFormat === 'checksum'
        ? isChecksumPrefix(presented, MAXIMUM_TOKEN_PREFIX_LENGTH)
        : presented.length <= MAXIMUM_TOKEN_PREFIX_LENGTH;
    return suits ? presented : configured;
  }

  /** The prefix of a well-formed plaintext token of either format. */
  private prefixOfPlaintext(token: string): string {
    const hex = this.options.tokenCharacterLength;
    if (token.length >= hex && /^[0-9a-f]+$/.test(token.slice(-hex))) {
      return token.slice(0, token.length - hex);
    }
    return token.slice(
      0,
      Math.max(0, token.length - CHECKSUM_RANDOM_LENGTH - CHECKSUM_LENGTH),
    );
  }

  private async deleteReturning(
    userId: unknown,
    narrow: (
      qb: ReturnType<Repository<KnoxToken>['createQueryBuilder']>,
    ) => unknown,
  ): Promise<KnoxToken[]> {
    const column = this.userColumnName();
    const qb = this.repository
      .createQueryBuilder()
      .delete()
      .where(`${this.quote(column)} = :userId`, { userId })
      .returning('*');
    narrow(qb as never);
    const result = await this.db(() => qb.execute());
    const rows = (Array.isArray(result.raw) ? result.raw : []) as Record<
      string,
      unknown
    >[];
    this.cache.forgetTokens(rows.map((row) => row.digest as string));
    return rows.map((row) =>
      Object.assign(new KnoxToken(), {
        digest: row.digest as string,
        tokenKey: row.token_key as string,
        id: row.id as string,
        name: (row.name as string | null) ?? null,
        userAgent: (row.user_agent as string | null) ?? null,
        ip: (row.ip as string | null) ?? null,
        created: row.created as Date,
        expiry: (row.expiry as Date | null) ?? null,
        lastUsedAt: (row.last_used_at as Date | null) ?? null,
        retiredAt: (row.retired_at as Date | null) ?? null,
      }),
    );
  }

  /** Loads the owner of a token whose `user` was not loaded. */
  private async ownerOf(token: KnoxToken): Promise<unknown> {
    const row = await this.db(() =>
      this.repository.findOne({
        where: { digest: token.digest },
        relations: { user: true },
      }),
    );
    if (!row?.user) {
      throw new UnauthorizedException(KnoxMessages.INVALID_TOKEN);
    }
    return row.user;
  }

  private userPrimaryColumn(): ColumnMetadata {
    const metadata = this.repository.manager.connection.getMetadata(
      this.extras.userEntity,
    );
    if (metadata.primaryColumns.length !== 1) {
      throw new Error(
        `KnoxModule: the user entity ${metadata.name} must have exactly one primary column.`,
      );
    }
    return metadata.primaryColumns[0];
  }

  private userColumnName(): string {
    const relation =
      this.repository.metadata.findRelationWithPropertyPath('user');
    return relation?.joinColumns[0]?.databaseName ?? 'user_id';
  }

  private userRef(userId: unknown): Record<string, unknown> {
    return { [this.userPrimaryColumn().propertyName]: userId };
  }

  private quote(name: string): string {
    return name
      .split('.')
      .map((part) => `"${part.replace(/"/g, '""')}"`)
      .join('.');
  }

  private tokenEvent(
    token: KnoxToken,
    client: Partial<KnoxClientInfo>,
    userId?: unknown,
  ): KnoxTokenEvent {
    return {
      userId:
        userId !== undefined
          ? userId
          : token.user
            ? this.userPrimaryColumn().getEntityValue(token.user as object)
            : undefined,
      tokenId: token.id,
      tokenKey: token.tokenKey,
      ip: client.ip ?? null,
      userAgent: client.userAgent ?? null,
    };
  }

  private emitRevoked(
    token: KnoxToken,
    userId: unknown,
    reason: KnoxRevokeReason,
    client: Partial<KnoxClientInfo>,
  ): void {
    this.emit(KnoxEvents.TOKEN_REVOKED, {
      ...this.tokenEvent(token, client, userId),
      reason,
    });
  }

  private emit(event: string, payload: unknown): void {
    if (!this.events) {
      return;
    }
    try {
      this.events.emit(event, payload);
    } catch (error) {
      this.logger.error(
        `A listener of ${event} threw: ${(error as Error)?.message ?? String(error)}`,
      );
    }
  }

  private async db<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof HttpException) {
        throw error;
      }
      this.logger.error(
        `Database error: ${(error as Error)?.message ?? String(error)}`,
      );
      throw new ServiceUnavailableException(KnoxMessages.UNAVAILABLE);
    }
  }
}
