import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import type {
  KnoxPgClientClass,
  KnoxPgClientConfig,
} from './knox-pg-client.js';
import type { QueryRunner, Repository } from 'typeorm';
import { KnoxClock } from '../knox-clock.js';
import {
  KNOX_RESOLVED_OPTIONS,
  KNOX_TOKEN_REPOSITORY,
} from '../knox.constants.js';
import type { ResolvedKnoxOptions } from '../options/knox-options.js';
import { KnoxOptionsError } from '../options/knox-options-error.js';
import type { KnoxToken } from '../store/knox-token.entity.js';
import {
  hasKnoxCacheAbilitiesTrigger,
  installKnoxCacheAbilitiesTrigger,
} from '../store/migrations/knox-cache-abilities.migration.js';
import {
  hasKnoxCacheTriggers,
  installKnoxCacheTriggers,
} from '../store/migrations/knox-cache-migrations.js';
import type { ResolvedKnoxCacheOptions } from '../options/knox-cache-options.js';
import {
  hasKnoxCacheLog,
  installKnoxCacheLog,
} from '../store/cache-log/knox-cache-log.migration.js';
import { knoxCacheLogReader } from '../store/cache-log/knox-cache-log-reader.js';
import {
  isBetterSqlite3,
  knoxSqliteTransaction,
} from '../store/knox-sqlite-transactions.js';
import { KnoxPgListener } from './knox-pg-listener.js';
import { KnoxCacheLogPruner, KnoxPollBus } from './knox-poll-bus.js';
import { KnoxRedisBus } from './knox-redis-bus.js';
import {
  KnoxTokenCache,
  copyRecord,
  type KnoxCacheMessage,
  type KnoxCachedAuth,
} from './knox-token-cache.js';

/** A caller's own copy of a shared result (see {@link KnoxCache.shareLookup}). */
function copyAuth(auth: KnoxCachedAuth): KnoxCachedAuth {
  return { user: auth.user, token: copyRecord(auth.token) };
}

/** The parts of TypeORM's postgres driver the listener uses. */
interface PostgresDriverParts {
  postgres: { Client: KnoxPgClientClass };
  master?: { options?: KnoxPgClientConfig };
}

/**
 * The cache room's surface for the rest of the module: the request path looks up and
 * remembers; every write path calls `forgetTokens` / `forgetUser`. With `cache: false` (the
 * default) every method is a no-op and `lookup` always misses.
 */
@Injectable()
export class KnoxCache implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('KnoxCache');
  /** The settings; `null` when the cache is off. */
  readonly settings: ResolvedKnoxCacheOptions | null;
  /** The in-process store; `null` when the cache is off. */
  readonly store: KnoxTokenCache | null;
  private listener: KnoxPgListener | undefined;
  /** Digests whose request-path write (lastUsedAt, auto refresh) is in flight on this instance. */
  private readonly touching = new Set<string>();
  private redisBus: KnoxRedisBus | undefined;
  private poller: KnoxPollBus | undefined;
  private pruner: KnoxCacheLogPruner | undefined;
  /** Database lookups in flight on this instance, by digest (see {@link shareLookup}). */
  private readonly flights = new Map<string, Promise<KnoxCachedAuth>>();
  private readonly listeners = new Set<(message: KnoxCacheMessage) => void>();

  constructor(
    @Inject(KNOX_RESOLVED_OPTIONS) options: ResolvedKnoxOptions,
    @Inject(KNOX_TOKEN_REPOSITORY)
    private readonly repository: Repository<KnoxToken>,
    clock: KnoxClock,
  ) {
    this.settings = options.cache;
    this.store = this.settings
      ? new KnoxTokenCache(this.settings.max, this.settings.maxAge, clock)
      : null;
    if (this.store) {
      this.store.onInvalidation = (message) => this.notify(message);
    }
  }

  /**
   * Calls `listener` after every invalidation this instance sees: its own writes' (also with the
   * cache off) and, with the cache on, every bus message and flush (`kind: 'flush'` also when the
   * bus drops or comes back: anything may have changed). Returns the unsubscribe function.
   */
  onInvalidation(listener: (message: KnoxCacheMessage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private notify(message: KnoxCacheMessage): void {
    this.dropFlights(message);
    for (const listener of this.listeners) {
      try {
        listener(message);
      } catch (error) {
        this.logger.error(`an invalidation listener failed: ${String(error)}`);
      }
    }
  }

  /** The PostgreSQL listener, when that bus is in use (its `pid` is the listening backend). */
  get pgListener(): KnoxPgListener | undefined {
    return this.listener;
  }

  /** The poller of the invalidation log, when the `'poll'` bus is in use. */
  get pollBus(): KnoxPollBus | undefined {
    return this.poller;
  }

  async onModuleInit(): Promise<void> {
    const settings = this.settings;
    const store = this.store;
    if (!settings || !store) {
      return;
    }
    const bus = this.busOf(settings);
    if (typeof bus === 'object') {
      this.redisBus = new KnoxRedisBus(
        bus.redis,
        settings.channel,
        store,
        this.logger,
      );
      await this.redisBus.start();
      await this.pruneLogIfAny();
      return;
    }
    if (bus === 'poll') {
      await this.startPolling(settings, store);
      return;
    }
    const driver = this.postgresDriver();
    await this.ensureTriggers(settings);
    this.listener = new KnoxPgListener(
      driver.postgres.Client,
      { ...(driver.master?.options ?? {}) },
      settings.channel,
      store,
      this.logger,
    );
    await this.listener.start();
    await this.pruneLogIfAny();
  }

  /**
   * With the `'postgres'` or the Redis bus, the log (when its migration ran) still fills: the
   * triggers append to it all the same. Prune it.
   */
  private async pruneLogIfAny(): Promise<void> {
    const dataSource = this.repository.manager.connection;
    const tokenTable = this.repository.metadata.tablePath;
    const queryRunner = dataSource.createQueryRunner();
    try {
      if (!(await hasKnoxCacheLog(queryRunner, tokenTable))) {
        return;
      }
    } finally {
      await queryRunner.release();
    }
    this.pruner = new KnoxCacheLogPruner(
      knoxCacheLogReader(dataSource, tokenTable),
      this.logger,
    );
    this.pruner.start();
  }

  /** The bus in use: `'auto'` is `'postgres'` on PostgreSQL, `'poll'` elsewhere. */
  private busOf(
    settings: ResolvedKnoxCacheOptions,
  ): Exclude<ResolvedKnoxCacheOptions['bus'], 'auto'> {
    if (settings.bus !== 'auto') {
      return settings.bus;
    }
    const type = this.repository.manager.connection.options.type;
    return type === 'postgres' ? 'postgres' : 'poll';
  }

  /** Checks (or installs) the log and its triggers, then polls it. */
  private async startPolling(
    settings: ResolvedKnoxCacheOptions,
    store: KnoxTokenCache,
  ): Promise<void> {
    const dataSource = this.repository.manager.connection;
    const tokenTable = this.repository.metadata.tablePath;
    const install =
      settings.installTriggers ?? dataSource.options.synchronize === true;
    const prepare = async (queryRunner: QueryRunner) => {
      if (install) {
        await installKnoxCacheLog(queryRunner, tokenTable);
      } else if (!(await hasKnoxCacheLog(queryRunner, tokenTable))) {
        throw new KnoxOptionsError(
          `the cache's invalidation log (table knox_cache_log and its triggers on ${tokenTable}) is missing, which the 'poll' bus reads: add knoxCacheMigrations({ tableName }) to your migrations and run them (KnoxCacheLog9000000000008), or set cache.installTriggers: true.`,
        );
      }
    };
    if (isBetterSqlite3(dataSource)) {
      // One connection: the DDL waits its turn in the library's queue (BEGIN IMMEDIATE) instead
      // of running inside a transaction open on it.
      await knoxSqliteTransaction(dataSource, (manager) =>
        prepare(manager.queryRunner as QueryRunner),
      );
    } else {
      const queryRunner = dataSource.createQueryRunner();
      try {
        await prepare(queryRunner);
      } finally {
        await queryRunner.release();
      }
    }
    this.poller = new KnoxPollBus(
      knoxCacheLogReader(dataSource, tokenTable),
      store,
      this.logger,
      { interval: settings.pollInterval },
    );
    await this.poller.start();
  }

  /** TypeORM's postgres driver, whose `pg` client class the listener connects with. */
  private postgresDriver(): PostgresDriverParts {
    const dataSource = this.repository.manager.connection;
    const driver = dataSource.driver as unknown as Partial<PostgresDriverParts>;
    if (dataSource.options.type !== 'postgres' || !driver.postgres?.Client) {
      throw new KnoxOptionsError(
        "`cache.bus` 'postgres' needs TypeORM's postgres driver; on another database, use the 'poll' bus (its default there) or the Redis bus.",
      );
    }
    return driver as PostgresDriverParts;
  }

  /**
   * Installs the invalidation triggers when asked (`installTriggers`, by default with
   * `synchronize`), else checks that the migration installed them.
   */
  private async ensureTriggers(
    settings: ResolvedKnoxCacheOptions,
  ): Promise<void> {
    const dataSource = this.repository.manager.connection;
    const tokenTable = this.repository.metadata.tablePath;
    const install =
      settings.installTriggers ?? dataSource.options.synchronize === true;
    const queryRunner = dataSource.createQueryRunner();
    try {
      const target = { tokenTable, channel: settings.channel };
      if (install) {
        await installKnoxCacheTriggers(queryRunner, target);
        await installKnoxCacheAbilitiesTrigger(queryRunner, target);
      } else if (
        !(await hasKnoxCacheTriggers(queryRunner, tokenTable)) ||
        !(await hasKnoxCacheAbilitiesTrigger(queryRunner, tokenTable))
      ) {
        throw new KnoxOptionsError(
          `the cache's invalidation triggers are missing on ${tokenTable}: add knoxCacheMigrations({ tableName, channel }) to your migrations and run them, or set cache.installTriggers: true.`,
        );
      }
    } finally {
      await queryRunner.release();
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.listener?.stop();
    await this.redisBus?.stop();
    await this.poller?.stop();
    await this.pruner?.stop();
  }

  /** Whether lookups can hit now: the cache is on and its bus connected. */
  get available(): boolean {
    return this.store?.available ?? false;
  }

  /** The cached authentication for `digest`, or `undefined` (off, down, missing, stale). */
  lookup(digest: string, now?: Date): KnoxCachedAuth | undefined {
    return this.store?.get(digest, now);
  }

  /** A ticket to take before a database lookup, for {@link remember}. */
  ticket(): number {
    return this.store?.ticket() ?? 0;
  }

  /** Remembers what the database vouched for, unless invalidated since `ticket`. */
  remember(ticket: number, auth: KnoxCachedAuth, userId: unknown): void {
    this.store?.remember(ticket, auth, userId);
  }

  /**
   * Single flight: concurrent lookups of one digest on this instance share one database
   * lookup, with the cache on or off. The first caller runs `lookup`; those that come while it
   * is in flight wait for it and get a copy of its result (their own record, as from the cache)
   * or the same error. Nothing is kept once it settles: a later call looks up again. An
   * invalidation of the token, of any user, or a flush (local, or from the bus) detaches the
   * flight, so a request that comes after a revocation never joins a read that may predate it;
   * whether the shared result is cached is still up to the first caller's ticket.
   */
  shareLookup(
    digest: string,
    lookup: () => Promise<KnoxCachedAuth>,
  ): Promise<KnoxCachedAuth> {
    const inFlight = this.flights.get(digest);
    if (inFlight) {
      return inFlight.then(copyAuth);
    }
    const flight = lookup();
    this.flights.set(digest, flight);
    const settle = () => {
      if (this.flights.get(digest) === flight) {
        this.flights.delete(digest);
      }
    };
    flight.then(settle, settle);
    return flight;
  }

  /** Lookups in flight now (for tests and metrics). */
  get lookupsInFlight(): number {
    return this.flights.size;
  }

  /** An invalidation: flights that may have read what it changed take no more callers. */
  private dropFlights(message: KnoxCacheMessage): void {
    if (this.flights.size === 0) {
      return;
    }
    if (message.kind === 'tokens') {
      for (const digest of message.digests) {
        this.flights.delete(digest);
      }
    } else {
      // The flights' users are not known until they settle: detach them all.
      this.flights.clear();
    }
  }

  /** The cached record changed by this instance's own write (lastUsedAt, auto refresh). */
  update(token: KnoxToken): void {
    this.store?.update(token);
  }

  /**
   * Claims the request-path write of a cached token: `false` when another request of this
   * instance is already writing it (that one carries the same values), so that a hot token is
   * written at most once per interval per instance, also under concurrency. Pair with
   * {@link endTouch}.
   */
  beginTouch(digest: string): boolean {
    if (this.touching.has(digest)) {
      return false;
    }
    this.touching.add(digest);
    return true;
  }

  /** Releases {@link beginTouch}. */
  endTouch(digest: string): void {
    this.touching.delete(digest);
  }

  /** Drops tokens after a write of this instance (and tells the Redis bus). */
  forgetTokens(digests: readonly string[]): void {
    if (this.store) {
      this.store.deleteTokens(digests);
    } else if (digests.length > 0) {
      this.notify({ kind: 'tokens', digests: [...digests] });
    }
  }

  /** Drops a user's tokens (and tells the Redis bus). */
  forgetUser(userId: unknown): void {
    if (this.store) {
      this.store.deleteUser(userId);
    } else {
      this.notify({ kind: 'user', userId: String(userId) });
    }
  }
}
