/**
 * Embedded PostgreSQL for tests and the example app: PGlite (PostgreSQL compiled to WebAssembly)
 * served over TCP by pglite-socket, so the ordinary `pg` driver and TypeORM's `postgres` driver can
 * connect to it with a postgres:// URL. Nothing to install, runs as any user.
 *
 * PGlite is ONE PostgreSQL session. pglite-socket multiplexes every client connection onto it, so
 * isolation comes from scheduling: once a connection opens a transaction, no other connection may
 * run anything until it commits or rolls back (transactions are serialised, which is stricter than
 * READ COMMITTED and makes `SELECT ... FOR UPDATE` trivially correct).
 *
 * pglite-socket 0.2.17's own scheduler gets that right for explicit transactions but not for the
 * extended query protocol (Parse/Bind/Describe/Execute/Sync, used by `pg` for every parameterised
 * query): outside a transaction it hands the session to another connection between the messages
 * of one query, which clobbers the unnamed prepared statement ("bind message supplies 2
 * parameters, but prepared statement "" requires 1", or silently wrong rows). It also deadlocks
 * for good if PGlite ever throws. See electric-sql/pglite issues #1046 and #985, PR #977.
 * So this module replaces the server's query queue with {@link SessionQueue}, which keeps the
 * session with one connection until PostgreSQL itself reports it idle (ReadyForQuery 'I').
 *
 * Depends only on @electric-sql/pglite, @electric-sql/pglite-socket and Node built-ins (no jest).
 */
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export interface EmbeddedPostgresOptions {
  /**
   * Directory to persist the database in, created with its parents when missing; in memory when
   * omitted.
   */
  dataDir?: string;
  /** TCP port on 127.0.0.1; a free port when omitted or 0. */
  port?: number;
  /** Maximum client connections; must be >= every pool size in use. Default 10. */
  maxConnections?: number;
  /**
   * Where to cache a freshly initialised data directory (a gzip tarball keyed by the PGlite
   * version), so later starts skip initdb (about 4 s down to about 1 s). `false` disables it.
   * Default: `<os tmpdir>/nestjs-knox-pglite`.
   */
  templateCacheDir?: string | false;
  /**
   * Warn on stderr when queries have waited this long for a connection that holds the session
   * (idle in a transaction). Default 5000 ms; 0 disables.
   */
  stallWarningMs?: number;
}

export interface EmbeddedPostgres {
  /** postgres:// URL for `pg` and TypeORM's `postgres` driver. */
  url: string;
  /** Closes client connections (rolling back their open transactions), the server and PGlite. */
  stop(): Promise<void>;
}

export async function startEmbeddedPostgres(
  opts: EmbeddedPostgresOptions = {},
): Promise<EmbeddedPostgres> {
  const maxConnections = opts.maxConnections ?? 10;
  if (!Number.isInteger(maxConnections) || maxConnections < 1) {
    throw new Error(
      `maxConnections must be a positive integer, got ${maxConnections}`,
    );
  }
  const port = opts.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`port must be an integer in 0..65535, got ${port}`);
  }

  const db = await createDatabase(opts);
  const queue = new SessionQueue(db, opts.stallWarningMs ?? 5000);
  let server: PGLiteSocketServer;
  try {
    server = new PGLiteSocketServer({
      db,
      host: '127.0.0.1',
      port,
      maxConnections,
    });
    installQueue(server, queue);
    await server.start();
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }

  // getServerConn() is "host:port" once listening (port 0 resolved to the real port).
  const address = server.getServerConn();
  let stopping: Promise<void> | undefined;
  return {
    url: `postgres://postgres:postgres@${address}/postgres`,
    stop() {
      stopping ??= (async () => {
        await server.stop();
        await queue.drained();
        await db.close();
      })();
      return stopping;
    },
  };
}

async function createDatabase(opts: EmbeddedPostgresOptions): Promise<PGlite> {
  const fresh = opts.dataDir === undefined || isEmptyDir(opts.dataDir);
  if (opts.dataDir !== undefined) {
    // PGlite creates the data directory itself but not its parents: `.data/pglite` in a fresh
    // clone (no `.data/`) failed with ENOENT.
    await mkdir(opts.dataDir, { recursive: true });
  }
  const dataDirOption =
    opts.dataDir === undefined ? {} : { dataDir: opts.dataDir };
  if (!fresh) return PGlite.create(dataDirOption);

  const templatePath = templateFile(opts.templateCacheDir);
  if (templatePath !== undefined && existsSync(templatePath)) {
    try {
      const template = new Blob([await readFile(templatePath)]);
      return await PGlite.create({ ...dataDirOption, loadDataDir: template });
    } catch {
      // Unreadable or partial template: fall back to initdb and rewrite it below.
    }
  }
  const db = await PGlite.create(dataDirOption);
  if (templatePath !== undefined) {
    try {
      const dump = await db.dumpDataDir('gzip');
      await mkdir(dirname(templatePath), { recursive: true });
      const tmp = `${templatePath}.${process.pid}.${Date.now()}.tmp`;
      await writeFile(tmp, new Uint8Array(await dump.arrayBuffer()));
      await rename(tmp, templatePath); // atomic: concurrent runs never read half a file
    } catch {
      // The cache is only an optimisation.
    }
  }
  return db;
}

function isEmptyDir(dir: string): boolean {
  return !existsSync(dir) || readdirSync(dir).length === 0;
}

function templateFile(
  cacheDir: string | false | undefined,
): string | undefined {
  if (cacheDir === false) return undefined;
  try {
    // Keyed by PGlite's version: a data directory only opens with the build that wrote it.
    const require = createRequire(import.meta.url);
    const entry = require.resolve('@electric-sql/pglite');
    const pkg = JSON.parse(
      readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8'),
    ) as { name?: string; version?: string };
    if (pkg.name !== '@electric-sql/pglite' || !pkg.version) return undefined;
    return join(
      cacheDir ?? join(tmpdir(), 'nestjs-knox-pglite'),
      `pglite-${pkg.version}-template.tar.gz`,
    );
  } catch {
    return undefined;
  }
}

/** The subset of pglite-socket's internal QueryQueueManager that its handlers and server call. */
interface QueryQueue {
  enqueue(
    handlerId: number,
    message: Uint8Array,
    onData: (data: Uint8Array) => void,
  ): Promise<number>;
  clearQueueForHandler(handlerId: number): void;
  clearTransactionIfNeeded(handlerId: number): Promise<void>;
  getQueueLength(): number;
}

function installQueue(server: PGLiteSocketServer, queue: SessionQueue): void {
  // `queryQueue` is private in pglite-socket 0.2.17; each connection handler reads it when the
  // connection is accepted, so swapping it before start() covers every connection.
  const internals = server as unknown as { queryQueue?: Partial<QueryQueue> };
  const original = internals.queryQueue;
  if (
    typeof original?.enqueue !== 'function' ||
    typeof original.clearQueueForHandler !== 'function' ||
    typeof original.clearTransactionIfNeeded !== 'function' ||
    typeof original.getQueueLength !== 'function'
  ) {
    throw new Error(
      'embedded-postgres: this @electric-sql/pglite-socket version has no replaceable queryQueue; ' +
        'check test/support/embedded-postgres.ts against its dist/ (written for 0.2.17)',
    );
  }
  internals.queryQueue = queue;
}

interface Task {
  handlerId: number;
  /** Runs with the PGlite query mutex held; resolves to the number of bytes sent back. */
  run(): Promise<number>;
  resolve(bytes: number): void;
  reject(err: unknown): void;
}

const SYNC = new Uint8Array([0x53, 0, 0, 0, 4]); // 'S' Sync
const TERMINATE = 0x58; // 'X'
const ROLLBACK = queryMessage('ROLLBACK');

/**
 * Serialises frontend messages onto the single PGlite session. A connection that leaves the
 * session anywhere but idle (inside a transaction, between Parse and Sync, in COPY ...) keeps it:
 * only its own messages run until the backend sends ReadyForQuery with status 'I'.
 */
class SessionQueue implements QueryQueue {
  private queue: Task[] = [];
  private owner: number | null = null;
  private running = false;
  private idleWaiters: (() => void)[] = [];
  private stallTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: PGlite,
    private readonly stallWarningMs: number,
  ) {}

  enqueue(
    handlerId: number,
    message: Uint8Array,
    onData: (data: Uint8Array) => void,
  ): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.queue.push({
        handlerId,
        resolve,
        reject,
        run: async () => {
          const tracker = new ResponseTracker();
          let bytes = 0;
          await this.db.execProtocolRawStream(message, {
            onRawData: (data) => {
              bytes += data.length;
              tracker.feed(data);
              onData(data);
            },
          });
          if (tracker.idle()) {
            this.owner = null;
          } else if (message[0] === TERMINATE && !this.db.isInTransaction()) {
            this.owner = null; // PGlite answers Terminate with nothing; the socket closes next
          } else {
            this.owner = handlerId;
          }
          return bytes;
        },
      });
      void this.pump();
    });
  }

  clearQueueForHandler(handlerId: number): void {
    this.queue = this.queue.filter((task) => {
      if (task.handlerId !== handlerId) return true;
      task.reject(new Error('Handler disconnected'));
      return false;
    });
  }

  /** Called when a connection goes away: give the session back in a clean, idle state. */
  clearTransactionIfNeeded(handlerId: number): Promise<void> {
    return new Promise<void>((resolve) => {
      // At the front, so it runs before anybody else once the session is free or ours.
      this.queue.unshift({
        handlerId,
        resolve: () => resolve(),
        reject: () => resolve(),
        run: async () => {
          if (this.owner === handlerId) await this.resetSession();
          return 0;
        },
      });
      void this.pump();
    });
  }

  getQueueLength(): number {
    return this.queue.length;
  }

  /** Resolves once nothing is queued or running. */
  drained(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (;;) {
        const task = this.next();
        if (!task) break;
        this.clearStallTimer();
        try {
          const bytes = await this.db.runExclusive(() => task.run());
          task.resolve(bytes);
        } catch (err) {
          task.reject(err);
          // PGlite itself failed: leave the session usable for everyone else.
          await this.db
            .runExclusive(() => this.resetSession())
            .catch(() => undefined);
        }
      }
    } finally {
      this.running = false;
    }
    if (this.queue.length > 0) {
      this.armStallTimer();
    } else {
      for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  private next(): Task | undefined {
    if (this.owner === null) return this.queue.shift();
    const index = this.queue.findIndex((t) => t.handlerId === this.owner);
    return index === -1 ? undefined : this.queue.splice(index, 1)[0];
  }

  /**
   * Ends a half-done extended-protocol exchange and any transaction, discarding the replies.
   * Call with PGlite's query mutex held (inside runExclusive).
   */
  private async resetSession(): Promise<void> {
    // Always pass our own onRawData: PGlite keeps the last stream callback otherwise, which
    // would write these replies to some client's socket.
    const discard = { onRawData: () => undefined };
    await this.db.execProtocolRawStream(SYNC, discard);
    if (this.db.isInTransaction()) {
      await this.db.execProtocolRawStream(ROLLBACK, discard);
    }
    this.owner = null;
  }

  private armStallTimer(): void {
    if (this.stallWarningMs <= 0 || this.stallTimer) return;
    this.stallTimer = setTimeout(() => {
      this.stallTimer = undefined;
      if (this.owner === null || this.queue.length === 0) return;
      process.stderr.write(
        `embedded-postgres: ${this.queue.length} queued message(s) have waited ` +
          `${this.stallWarningMs} ms for connection #${this.owner}, which holds the only ` +
          'PGlite session (idle in a transaction?). PGlite runs one transaction at a time: ' +
          'code that waits for another connection inside a transaction hangs here.\n',
      );
    }, this.stallWarningMs);
    this.stallTimer.unref();
  }

  private clearStallTimer(): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
  }
}

/**
 * Follows backend message framing across chunks, to tell whether a response ended with
 * ReadyForQuery and with which transaction status ('I' idle, 'T' in transaction, 'E' failed).
 */
class ResponseTracker {
  private readonly header = new Uint8Array(5);
  private headerLength = 0;
  private remaining = 0;
  private type = 0;
  private lastType = 0;
  private status = 0;

  feed(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.remaining === 0) {
        this.header[this.headerLength++] = chunk[i++];
        if (this.headerLength < 5) continue;
        this.headerLength = 0;
        this.type = this.header[0];
        const length =
          ((this.header[1] << 24) |
            (this.header[2] << 16) |
            (this.header[3] << 8) |
            this.header[4]) >>>
          0;
        this.remaining = Math.max(length - 4, 0);
        if (this.remaining === 0) this.complete(0);
      } else {
        const n = Math.min(this.remaining, chunk.length - i);
        i += n;
        this.remaining -= n;
        if (this.remaining === 0) this.complete(chunk[i - 1]);
      }
    }
  }

  idle(): boolean {
    return (
      this.headerLength === 0 &&
      this.remaining === 0 &&
      this.lastType === 0x5a && // 'Z' ReadyForQuery
      this.status === 0x49 // 'I'
    );
  }

  private complete(lastByte: number): void {
    this.lastType = this.type;
    this.status = this.type === 0x5a ? lastByte : 0;
  }
}

function queryMessage(sql: string): Uint8Array {
  const body = Buffer.from(`${sql}\0`, 'utf8');
  const message = Buffer.alloc(5 + body.length);
  message[0] = 0x51; // 'Q'
  message.writeInt32BE(4 + body.length, 1);
  body.copy(message, 5);
  return new Uint8Array(message);
}
