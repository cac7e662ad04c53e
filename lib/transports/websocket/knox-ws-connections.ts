import type { KnoxCache } from '../../cache/knox-cache.js';
import type { KnoxCacheMessage } from '../../cache/knox-token-cache.js';
import type { KnoxClock } from '../../knox-clock.js';

/** The longest delay `setTimeout` takes (about 24.8 days); longer expiries re-arm on firing. */
const MAX_TIMER = 2 ** 31 - 1;

/** What a connection can be listened on for its end (socket.io `disconnect`, `ws` `close`). */
interface Closable {
  once?: (event: string, listener: () => void) => unknown;
}

/** How the guard that authenticated a connection checks it again and closes it. */
export interface KnoxWsConnectionHooks {
  /**
   * Authenticates the connection's token again: resolves its (new) expiry, or `false` when the
   * token is refused (the connection is then closed by the hook itself). A database outage
   * resolves `undefined`: the connection stays, its next message is refused with a 503.
   */
  recheck(): Promise<Date | null | false | undefined>;
}

interface Connection {
  client: object;
  digest: string;
  userKey: string;
  hooks: KnoxWsConnectionHooks;
  timer?: NodeJS.Timeout;
  checking: boolean;
  again: boolean;
}

/**
 * The live connections authenticated at their handshake, by token digest and by user id, so
 * that every invalidation the cache sees (this instance's own revocations; with `cache: true`
 * and a bus, other instances' writes, SQL deletes, user changes, flushes) checks the connections
 * it concerns again, and a refused one is closed. Each connection also has a timer at its
 * token's expiry (read from the row, counted on the module's `KnoxClock`; re-armed when an auto refresh extends it). A connection
 * leaves the registry when it closes.
 */
export class KnoxWsConnections {
  private readonly all = new Map<object, Connection>();
  private readonly byDigest = new Map<string, Set<Connection>>();
  private readonly byUser = new Map<string, Set<Connection>>();

  constructor(
    cache: KnoxCache,
    private readonly clock: KnoxClock,
  ) {
    cache.onInvalidation((message) => this.apply(message));
  }

  /** Connections held now (for the tests and for metrics). */
  get size(): number {
    return this.all.size;
  }

  /** Whether `client` is held. */
  has(client: object): boolean {
    return this.all.has(client);
  }

  /**
   * Holds `client` (authenticated with the token of `digest`, owned by `userId`) until it closes,
   * and arms its expiry timer. A client already held is re-keyed.
   */
  add(
    client: object,
    digest: string,
    userId: unknown,
    expiry: Date | null,
    hooks: KnoxWsConnectionHooks,
  ): void {
    this.remove(client);
    const connection: Connection = {
      client,
      digest,
      userKey: String(userId),
      hooks,
      checking: false,
      again: false,
    };
    this.all.set(client, connection);
    index(this.byDigest, connection.digest, connection);
    index(this.byUser, connection.userKey, connection);
    this.arm(connection, expiry);
    const closable = client as Closable;
    const leave = () => this.remove(client);
    closable.once?.('disconnect', leave);
    closable.once?.('close', leave);
  }

  /** Re-arms the expiry timer of a held client (a message saw the token's current expiry). */
  touch(client: object, expiry: Date | null): void {
    const connection = this.all.get(client);
    if (connection) {
      this.arm(connection, expiry);
    }
  }

  /** Lets go of `client` (it closed, or was closed). */
  remove(client: object): void {
    const connection = this.all.get(client);
    if (!connection) {
      return;
    }
    clearTimeout(connection.timer);
    this.all.delete(client);
    unindex(this.byDigest, connection.digest, connection);
    unindex(this.byUser, connection.userKey, connection);
  }

  private apply(message: KnoxCacheMessage): void {
    if (message.kind === 'tokens') {
      for (const digest of message.digests) {
        this.recheckAll(this.byDigest.get(digest));
      }
    } else if (message.kind === 'user') {
      this.recheckAll(this.byUser.get(message.userId));
    } else {
      this.recheckAll(new Set(this.all.values()));
    }
  }

  private recheckAll(connections: Set<Connection> | undefined): void {
    for (const connection of [...(connections ?? [])]) {
      this.recheck(connection);
    }
  }

  /** One check at a time per connection; an invalidation during a check runs one more. */
  private recheck(connection: Connection): void {
    if (connection.checking) {
      connection.again = true;
      return;
    }
    connection.checking = true;
    connection.again = false;
    connection.hooks.recheck().then(
      (expiry) => this.checked(connection, expiry),
      () => this.checked(connection, undefined),
    );
  }

  private checked(
    connection: Connection,
    expiry: Date | null | false | undefined,
  ): void {
    connection.checking = false;
    if (expiry === false) {
      this.remove(connection.client);
      return;
    }
    if (this.all.get(connection.client) !== connection) {
      return;
    }
    if (expiry !== undefined) {
      this.arm(connection, expiry);
    }
    if (connection.again) {
      this.recheck(connection);
    }
  }

  private arm(connection: Connection, expiry: Date | null): void {
    clearTimeout(connection.timer);
    connection.timer = undefined;
    if (expiry === null) {
      return;
    }
    // One millisecond past the expiry (a token is refused once its expiry is behind the clock);
    // an expiry already past that the token service still accepted (the same millisecond, or a
    // clock of its own): look again shortly.
    const left = expiry.getTime() - this.clock.now().getTime();
    const delay = Math.min(left >= 0 ? left + 1 : 25, MAX_TIMER);
    connection.timer = setTimeout(() => this.recheck(connection), delay);
    connection.timer.unref();
  }
}

function index(
  map: Map<string, Set<Connection>>,
  key: string,
  connection: Connection,
): void {
  let set = map.get(key);
  if (!set) {
    set = new Set();
    map.set(key, set);
  }
  set.add(connection);
}

function unindex(
  map: Map<string, Set<Connection>>,
  key: string,
  connection: Connection,
): void {
  const set = map.get(key);
  if (set) {
    set.delete(connection);
    if (set.size === 0) {
      map.delete(key);
    }
  }
}

/** One registry per cache (per app), shared by every `KnoxWsGuard` instance of that app. */
const registries = new WeakMap<KnoxCache, KnoxWsConnections>();

/** The registry of the app whose cache is `cache`. */
export function knoxWsConnectionsOf(
  cache: KnoxCache,
  clock: KnoxClock,
): KnoxWsConnections {
  let registry = registries.get(cache);
  if (!registry) {
    registry = new KnoxWsConnections(cache, clock);
    registries.set(cache, registry);
  }
  return registry;
}
