import { LRUCache } from 'lru-cache';
import type { KnoxClock } from '../knox-clock.js';
import type { KnoxToken } from '../store/knox-token.entity.js';

/** What the cache keeps for one token: the record and its owner, as the database returned them. */
export interface KnoxCachedAuth<User = any> {
  user: User;
  token: KnoxToken<User>;
}

interface Entry {
  user: unknown;
  token: KnoxToken;
  userKey: string;
  /** Clock time (ms) the entry was read from the database. */
  storedAt: number;
}

/**
 * A copy of a record with its class (`instanceof` still holds), own properties and symbols: each
 * request gets its own, so that what one request changes on it (a rotation, a refresh) does not
 * leak into the next before the cache is told. (A spread followed by `Object.setPrototypeOf`
 * measured faster alone, but made the guard's hit path slower by half: the copy then gets a
 * property of its own, the guard's mark, on a map V8 cannot keep fast.)
 */
export function copyRecord(token: KnoxToken): KnoxToken {
  return Object.assign(
    Object.create(Object.getPrototypeOf(token) as object) as KnoxToken,
    token,
  );
}

/**
 * The in-process cache of authenticated tokens, keyed by the token's digest (never the
 * plaintext): an LRU bounded by `max` entries, each served for at most `maxAge` ms after it was
 * read from the database and never past its token's expiry (both checked against the
 * {@link KnoxClock} on every hit). Only tokens the database vouched for are remembered.
 *
 * Invalidation is local and synchronous; a bus (PostgreSQL LISTEN/NOTIFY or Redis) calls the
 * same methods for other writers. While the bus is down the cache is `suspend`ed: every lookup
 * misses, nothing is remembered, and `resume` starts from an empty cache.
 *
 * A lookup that misses takes a `ticket`; `remember` with that ticket is refused when an
 * invalidation of that token or of its user (or a flush) happened in between, so a read that
 * raced a revocation never caches the row the revocation removed. Invalidations of other tokens
 * do not refuse it (a legacy-digest upgrade's own notification names the old digest only).
 * The per-token record is bounded; what it forgets raises a floor that refuses conservatively.
 */
export class KnoxTokenCache {
  private readonly entries: LRUCache<string, Entry>;
  private readonly byUser = new Map<string, Set<string>>();
  private epoch = 0;
  /** The epoch of the last invalidation of each digest / user key (bounded). */
  private readonly invalidated = new LRUCache<string, number>({
    max: 10_000,
    dispose: (epoch) => {
      this.floor = Math.max(this.floor, epoch);
    },
  });
  /** Tickets at or below this epoch are refused: a flush, or a forgotten invalidation. */
  private floor = 0;
  private live = false;
  /**
   * `performance.now()` after which lookups miss until the bus vouches again: the poll bus
   * moves it forward after each read of the log, so that a read that is late (database slow,
   * connection hung, event loop blocked) bypasses the cache instead of serving what it may have
   * missed. `Infinity` for the buses that push.
   */
  freshUntil = Infinity;
  /** Called after each local invalidation (the Redis bus publishes it). */
  onLocalInvalidation?: (message: KnoxCacheMessage) => void;
  /** Called after every invalidation, local or from a bus, and every flush (`KnoxCache.onInvalidation`). */
  onInvalidation?: (message: KnoxCacheMessage) => void;

  constructor(
    readonly max: number,
    readonly maxAge: number,
    private readonly clock: KnoxClock,
  ) {
    this.entries = new LRUCache<string, Entry>({
      max,
      dispose: (entry, digest) => this.unindex(entry.userKey, digest),
    });
  }

  /** Whether lookups can hit (the bus is connected, and up to date when it polls). */
  get available(): boolean {
    return this.live && this.fresh();
  }

  private fresh(): boolean {
    return this.freshUntil === Infinity || performance.now() <= this.freshUntil;
  }

  /** Entries held now. */
  get size(): number {
    return this.entries.size;
  }

  /** The token and user cached for `digest`, if fresh; `undefined` sends the caller to the database. */
  get(digest: string, at?: Date): KnoxCachedAuth | undefined {
    if (!this.live || !this.fresh()) {
      return undefined;
    }
    const entry = this.entries.get(digest);
    if (!entry) {
      return undefined;
    }
    const now = (at ?? this.clock.now()).getTime();
    if (
      now - entry.storedAt >= this.maxAge ||
      now < entry.storedAt ||
      (entry.token.expiry !== null && entry.token.expiry.getTime() < now)
    ) {
      this.entries.delete(digest);
      return undefined;
    }
    const token = copyRecord(entry.token);
    return { user: entry.user, token };
  }

  /** Whether the token or its user was invalidated (or the cache flushed) after `ticket`. */
  private staleSince(ticket: number, digest: string, userKey: string): boolean {
    return (
      this.floor > ticket ||
      (this.invalidated.get(`t:${digest}`) ?? 0) > ticket ||
      (this.invalidated.get(`u:${userKey}`) ?? 0) > ticket
    );
  }

  /** A ticket for a lookup about to go to the database (see {@link remember}). */
  ticket(): number {
    return this.epoch;
  }

  /**
   * Caches what the database returned for `token`'s digest, unless an invalidation happened
   * since `ticket` was taken or the cache is suspended.
   *
   * @returns whether it was cached
   */
  remember(
    ticket: number,
    auth: KnoxCachedAuth,
    userId: unknown,
    storedAt: number = this.clock.now().getTime(),
  ): boolean {
    const digest = auth.token.digest;
    const userKey = String(userId);
    if (!this.live || this.staleSince(ticket, digest, userKey)) {
      return false;
    }
    const token = copyRecord(auth.token);
    this.entries.set(digest, { user: auth.user, token, userKey, storedAt });
    let digests = this.byUser.get(userKey);
    if (!digests) {
      digests = new Set();
      this.byUser.set(userKey, digests);
    }
    digests.add(digest);
    return true;
  }

  /**
   * Replaces the record of a cached token after this instance wrote it (a `lastUsedAt` update,
   * an auto refresh), keeping its age. Does nothing when the entry is gone meanwhile.
   */
  update(token: KnoxToken): void {
    const entry = this.entries.peek(token.digest);
    if (!entry) {
      return;
    }
    const copy = copyRecord(token);
    copy.user = entry.token.user;
    entry.token = copy;
  }

  /** Drops tokens by digest. `local`: a write of this process (the Redis bus publishes it). */
  deleteTokens(digests: readonly string[], local = true): void {
    this.epoch++;
    for (const digest of digests) {
      this.entries.delete(digest);
      this.invalidated.set(`t:${digest}`, this.epoch);
    }
    if (local && digests.length > 0) {
      this.onLocalInvalidation?.({ kind: 'tokens', digests: [...digests] });
    }
    if (digests.length > 0) {
      this.onInvalidation?.({ kind: 'tokens', digests: [...digests] });
    }
  }

  /** Drops every token of a user. */
  deleteUser(userId: unknown, local = true): void {
    this.epoch++;
    const userKey = String(userId);
    this.invalidated.set(`u:${userKey}`, this.epoch);
    const digests = this.byUser.get(userKey);
    if (digests) {
      for (const digest of [...digests]) {
        this.entries.delete(digest);
      }
    }
    if (local) {
      this.onLocalInvalidation?.({ kind: 'user', userId: userKey });
    }
    this.onInvalidation?.({ kind: 'user', userId: userKey });
  }

  /** Drops everything. */
  clear(): void {
    this.epoch++;
    this.floor = this.epoch;
    this.invalidated.clear();
    this.entries.clear();
    this.byUser.clear();
    this.onInvalidation?.({ kind: 'flush' });
  }

  /** The bus went down: bypass the cache until {@link resume}. */
  suspend(): void {
    this.live = false;
    this.clear();
  }

  /** The bus is (back) up: start again from an empty cache. */
  resume(): void {
    this.clear();
    this.live = true;
  }

  /** Applies a message received from a bus (another instance or another writer). */
  apply(message: KnoxCacheMessage): void {
    if (message.kind === 'tokens') {
      this.deleteTokens(message.digests, false);
    } else if (message.kind === 'user') {
      this.deleteUser(message.userId, false);
    } else {
      this.clear();
    }
  }

  private unindex(userKey: string, digest: string): void {
    const digests = this.byUser.get(userKey);
    if (digests) {
      digests.delete(digest);
      if (digests.size === 0) {
        this.byUser.delete(userKey);
      }
    }
  }
}

/** An invalidation as the buses carry it. */
export type KnoxCacheMessage =
  | { kind: 'tokens'; digests: string[] }
  | { kind: 'user'; userId: string }
  | { kind: 'flush' };

/**
 * The wire format, shared by the triggers and the Redis bus: `t:<digest>[,<digest>…]`,
 * `u:<user id>`, `f`. Anything else is read as a flush (safe whatever it meant).
 */
export function parseKnoxCacheMessage(payload: string): KnoxCacheMessage {
  if (payload.startsWith('t:')) {
    return {
      kind: 'tokens',
      digests: payload
        .slice(2)
        .split(',')
        .filter((d) => d.length > 0),
    };
  }
  if (payload.startsWith('u:')) {
    return { kind: 'user', userId: payload.slice(2) };
  }
  return { kind: 'flush' };
}

/** The wire format of a message (see {@link parseKnoxCacheMessage}). */
export function formatKnoxCacheMessage(message: KnoxCacheMessage): string {
  if (message.kind === 'tokens') {
    return `t:${message.digests.join(',')}`;
  }
  if (message.kind === 'user') {
    return `u:${message.userId}`;
  }
  return 'f';
}
