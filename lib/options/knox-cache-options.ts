import { KnoxOptionsError } from './knox-options-error.js';

/**
 * The part of an `ioredis` client (or any client with the same calls) the Redis bus uses: the
 * app's client publishes, and a `duplicate()` of it subscribes (a subscribed connection can do
 * nothing else).
 */
export interface KnoxRedisClient {
  publish(channel: string, message: string): Promise<unknown> | unknown;
  duplicate(): KnoxRedisSubscriber;
}

/** The subscriber side of {@link KnoxRedisClient} (`ioredis` in subscriber mode). */
export interface KnoxRedisSubscriber {
  subscribe(channel: string): Promise<unknown>;
  on(event: string, listener: (...args: any[]) => void): unknown;
  removeAllListeners(event?: string): unknown;
  quit(): Promise<unknown>;
  disconnect(): void;
  /** ioredis' connection state: 'ready' once connected (and subscriptions restored). */
  status?: string;
}

/**
 * Invalidation through Redis pub/sub, for deployments where PostgreSQL `LISTEN` is unavailable
 * (PgBouncer in transaction mode). It carries the library's own writes only: a token deleted by
 * SQL, by another application or by `ON DELETE CASCADE` is not seen, and stays served for at
 * most `maxAge`.
 */
export interface KnoxCacheRedisBus {
  /** The app's Redis client (e.g. `new Redis(url)` from `ioredis`). Its `duplicate()` subscribes. */
  redis: KnoxRedisClient;
  /**
   * The pub/sub channel; every instance sharing the token table must use the same one.
   * @default 'knox_cache'
   */
  channel?: string;
}

/** The `cache` option of {@link KnoxModuleOptions}, as an object. */
export interface KnoxCacheOptions {
  /**
   * Most tokens kept in memory per instance (least recently used ones go first).
   * @default 10000
   */
  max?: number;
  /**
   * Longest time in milliseconds an entry is served from memory before the database is asked
   * again: a safety net for what no bus can see. A token is never served past its own expiry.
   * @default 60000 (60 s)
   */
  maxAge?: number;
  /**
   * How other instances and other writers reach this cache. `'postgres'`: database triggers
   * (see docs/cache.md) `NOTIFY` a channel that each instance `LISTEN`s to on one dedicated
   * connection, so every writer is seen (other instances, SQL, Django, cascades). A
   * `'poll'`: the same triggers append to an invalidation log table (`knox_cache_log`) that each
   * instance reads every `pollInterval` ms, so every writer is seen on any database and without
   * `LISTEN` (PgBouncer in transaction mode). A {@link KnoxCacheRedisBus}: Redis pub/sub fed by
   * the library's own writes.
   * @default 'postgres' on PostgreSQL, 'poll' on MySQL / MariaDB and SQLite
   */
  bus?: 'postgres' | 'poll' | KnoxCacheRedisBus;
  /**
   * With the `'poll'` bus: milliseconds between two reads of the invalidation log, from 10 to
   * 1000 and below `maxAge`. A revocation reaches the other instances within about this long
   * (one read costs one indexed query: 20 a second per instance at the default).
   * @default 50
   */
  pollInterval?: number;
  /**
   * With the `'postgres'` bus: the `NOTIFY` channel the triggers use.
   * @default 'knox_cache'
   */
  channel?: string;
  /**
   * With the `'postgres'` or `'poll'` bus: install (or replace) the triggers (and the `'poll'`
   * bus's log table) at boot, as a `synchronize`
   * setup needs. Without it, the triggers must come from the shipped migration, and boot fails
   * when they are missing.
   * @default the data source's `synchronize` setting
   */
  installTriggers?: boolean;
}

/** The cache settings with every default applied. */
export interface ResolvedKnoxCacheOptions {
  max: number;
  maxAge: number;
  /** `'auto'`: not given, the database's default (`'postgres'` on PostgreSQL, else `'poll'`). */
  bus: 'auto' | 'postgres' | 'poll' | KnoxCacheRedisBus;
  channel: string;
  /** Milliseconds between two reads of the log (`'poll'` bus; also `'auto'` off PostgreSQL). */
  pollInterval: number;
  installTriggers: boolean | undefined;
}

/** Default of `cache.max`. */
export const KNOX_CACHE_DEFAULT_MAX = 10_000;
/** Default of `cache.maxAge`: 60 s. */
export const KNOX_CACHE_DEFAULT_MAX_AGE = 60_000;
/** Default channel of either bus. */
export const KNOX_CACHE_DEFAULT_CHANNEL = 'knox_cache';

/** Default of `cache.pollInterval`: 50 ms (revocations seen within 100 ms p99, measured). */
export const KNOX_CACHE_DEFAULT_POLL_INTERVAL = 50;
/** Bounds of `cache.pollInterval`, in ms. */
export const KNOX_CACHE_POLL_INTERVAL_MIN = 10;
export const KNOX_CACHE_POLL_INTERVAL_MAX = 1000;

const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;
const KEYS = [
  'max',
  'maxAge',
  'bus',
  'channel',
  'pollInterval',
  'installTriggers',
];

/**
 * Validates the `cache` option at boot: `null` when the cache is off (`false`, unset), the
 * settings otherwise.
 *
 * @throws KnoxOptionsError saying what to fix
 */
export function resolveKnoxCacheOptions(
  value: unknown,
): ResolvedKnoxCacheOptions | null {
  if (value === undefined || value === false) {
    return null;
  }
  const given = cacheOptionsObject(value);
  const max = checkMax(given.max);
  const maxAge = checkMaxAge(given.maxAge);
  const bus = given.bus ?? 'auto';
  const channel =
    bus === 'postgres' || bus === 'poll' || bus === 'auto'
      ? postgresChannel(given)
      : redisChannel(bus, given);
  const pollInterval = checkPollInterval(given, bus, maxAge);
  checkInstallTriggers(given.installTriggers);
  return {
    max,
    maxAge,
    bus,
    channel,
    pollInterval,
    installTriggers: given.installTriggers,
  };
}

/** `cache.pollInterval`: a whole number of ms in bounds, below `maxAge`, for a bus that polls. */
function checkPollInterval(
  given: KnoxCacheOptions,
  bus: unknown,
  maxAge: number,
): number {
  const value = given.pollInterval;
  if (value !== undefined && bus !== 'poll' && bus !== 'auto') {
    throw new KnoxOptionsError(
      "`cache.pollInterval` belongs to the 'poll' bus; set `cache.bus: 'poll'` or remove it.",
    );
  }
  const interval = value ?? KNOX_CACHE_DEFAULT_POLL_INTERVAL;
  if (
    !Number.isInteger(interval) ||
    interval < KNOX_CACHE_POLL_INTERVAL_MIN ||
    interval > KNOX_CACHE_POLL_INTERVAL_MAX ||
    interval >= maxAge
  ) {
    throw new KnoxOptionsError(
      `\`cache.pollInterval\` must be a whole number of milliseconds from ${KNOX_CACHE_POLL_INTERVAL_MIN} to ${KNOX_CACHE_POLL_INTERVAL_MAX}, below \`cache.maxAge\` (${maxAge}); got ${String(value)}. A revocation reaches the other instances within about one interval.`,
    );
  }
  return interval;
}

/** `true` as `{}`, an object with known keys as it is; anything else refused. */
function cacheOptionsObject(value: unknown): KnoxCacheOptions {
  const given: KnoxCacheOptions = value === true ? {} : (value as never);
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    throw new KnoxOptionsError(
      `\`cache\` must be false, true or { max, maxAge, bus }; got ${String(value)}.`,
    );
  }
  const unknown = Object.keys(given).filter((key) => !KEYS.includes(key));
  if (unknown.length > 0) {
    throw new KnoxOptionsError(
      `\`cache\` has unknown option(s) ${unknown.join(', ')}; it takes ${KEYS.join(', ')}.`,
    );
  }
  return given;
}

function checkMax(given: number | undefined): number {
  const max = given ?? KNOX_CACHE_DEFAULT_MAX;
  if (!Number.isInteger(max) || max < 1) {
    throw new KnoxOptionsError(
      `\`cache.max\` must be a whole number of entries >= 1; got ${String(given)}.`,
    );
  }
  return max;
}

function checkMaxAge(given: number | undefined): number {
  const maxAge = given ?? KNOX_CACHE_DEFAULT_MAX_AGE;
  if (typeof maxAge !== 'number' || !Number.isFinite(maxAge) || maxAge <= 0) {
    throw new KnoxOptionsError(
      `\`cache.maxAge\` must be a duration in milliseconds (a finite number > 0); got ${String(given)}.`,
    );
  }
  return maxAge;
}

/** The `NOTIFY` channel of the `'postgres'` bus: an SQL identifier the triggers can name. */
function postgresChannel(given: KnoxCacheOptions): string {
  const channel = given.channel ?? KNOX_CACHE_DEFAULT_CHANNEL;
  if (typeof channel !== 'string' || !CHANNEL.test(channel)) {
    throw new KnoxOptionsError(
      `\`cache.channel\` must be a lower-case SQL identifier of at most 63 characters (letters, digits, _); got ${String(channel)}.`,
    );
  }
  return channel;
}

/**
 * The pub/sub channel of a Redis bus, after checking the bus has a usable client and that no
 * option of the `'postgres'` bus was given beside it.
 */
function redisChannel(bus: unknown, given: KnoxCacheOptions): string {
  const redis = (bus as Partial<KnoxCacheRedisBus> | null)?.redis;
  if (
    typeof bus !== 'object' ||
    bus === null ||
    typeof redis?.publish !== 'function' ||
    typeof redis?.duplicate !== 'function'
  ) {
    throw new KnoxOptionsError(
      "`cache.bus` must be 'postgres', 'poll' or { redis } with an ioredis client (one with publish() and duplicate()).",
    );
  }
  if (given.channel !== undefined || given.installTriggers !== undefined) {
    throw new KnoxOptionsError(
      "`cache.channel` and `cache.installTriggers` belong to the 'postgres' and 'poll' buses; give the Redis channel as `cache.bus.channel`.",
    );
  }
  const channel =
    (bus as KnoxCacheRedisBus).channel ?? KNOX_CACHE_DEFAULT_CHANNEL;
  if (typeof channel !== 'string' || channel.length === 0) {
    throw new KnoxOptionsError(
      `\`cache.bus.channel\` must be a non-empty string; got ${String((bus as KnoxCacheRedisBus).channel)}.`,
    );
  }
  return channel;
}

function checkInstallTriggers(given: unknown): void {
  if (given !== undefined && typeof given !== 'boolean') {
    throw new KnoxOptionsError(
      `\`cache.installTriggers\` must be true or false; got ${String(given)}.`,
    );
  }
}
