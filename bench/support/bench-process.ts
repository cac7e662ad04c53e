/**
 * The benchmark's knobs (see the header of bench/auth.bench.ts) and its server child processes.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveBenchDb } from './bench-db.js';

export function numberFromEnv(
  name: string,
  fallback: number,
  min = 0.001,
): number {
  const raw = process.env[name];
  const value = raw === undefined ? fallback : Number(raw);
  if (!Number.isFinite(value) || value < min) {
    throw new Error(`${name} must be a number >= ${min}; got ${raw}`);
  }
  return value;
}

export const DB = resolveBenchDb();
const PG = DB.kind === 'postgres';
export const SECONDS = numberFromEnv('BENCH_SECONDS', 2);
export const ROUNDS = numberFromEnv('BENCH_ROUNDS', 3);
export const CONCURRENCY = numberFromEnv('BENCH_CONCURRENCY', 10);
export const POOL_SIZE = numberFromEnv('BENCH_POOL', 10);
/** PostgreSQL only (pg COPY-free generate_series fill, VACUUM, pruneExpired's ctid batches). */
export const SCALE_ROWS = PG
  ? numberFromEnv('BENCH_SCALE_ROWS', 1_000_000, 0)
  : 0;
export const REVOCATIONS = numberFromEnv('BENCH_REVOCATIONS', 100, 0);
export const IDLE_SECONDS = numberFromEnv('BENCH_IDLE_SECONDS', 10, 0);
export const EXTRAS = numberFromEnv('BENCH_EXTRAS', 1, 0) === 1;
/** PostgreSQL only (pg_stat_database). */
export const XACT_CHECK = PG && numberFromEnv('BENCH_XACT_CHECK', 1, 0) === 1;
/** PostgreSQL only (named prepared statements). */
export const PREPARED = PG && numberFromEnv('BENCH_PREPARED', 1, 0) === 1;
/** The cache's bus: `auto` (the default: `postgres` on PostgreSQL, `poll` elsewhere) or as given. */
export const BUS = process.env.BENCH_BUS ?? 'auto';
if (!['auto', 'postgres', 'poll'].includes(BUS)) {
  throw new Error(`BENCH_BUS=${BUS}: use auto, postgres or poll`);
}
/** The poll bus's interval (ms; the library's default, 50, when unset). */
export const POLL_INTERVAL = process.env.BENCH_POLL_INTERVAL;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The driver's counters of a server process (see db-counter.ts), and its CPU time so far. */
export interface Counters {
  queries: number;
  transactions: number;
  pollerQueries: number;
  cpuUs: number;
}

/** A server child process and a request/reply channel to it. */
export class Server {
  private nextId = 1;
  private readonly waiting = new Map<
    number,
    { resolve: (v: any) => void; reject: (e: Error) => void }
  >();
  private constructor(private readonly child: ChildProcess) {
    child.on(
      'message',
      (message: { id?: number; reply?: unknown; error?: string }) => {
        const waiter = message.id ? this.waiting.get(message.id) : undefined;
        if (waiter) {
          this.waiting.delete(message.id!);
          if (message.error) {
            waiter.reject(new Error(message.error));
          } else {
            waiter.resolve(message.reply);
          }
        }
      },
    );
  }

  static start<T>(
    role: 'main' | 'peer',
  ): Promise<{ server: Server; ready: T }> {
    const child = fork(
      path.join(
        path.dirname(fileURLToPath(import.meta.url)),
        'bench-server.js',
      ),
      [],
      {
        env: {
          ...process.env,
          DATABASE_URL: DB.url,
          BENCH_POOL: String(POOL_SIZE),
          BENCH_ROLE: role,
          BENCH_BUS: BUS,
          BENCH_SCALE: SCALE_ROWS > 0 ? '1' : '0',
          ...(POLL_INTERVAL ? { BENCH_POLL_INTERVAL: POLL_INTERVAL } : {}),
        },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      },
    );
    return new Promise((resolve, reject) => {
      child.once('message', (ready: T) =>
        resolve({ server: new Server(child), ready }),
      );
      child.once('exit', (code) =>
        reject(new Error(`bench server (${role}) exited with ${code}`)),
      );
    });
  }

  ask<T>(cmd: string): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.child.send({ id, cmd });
    });
  }

  async stop(): Promise<void> {
    this.child.removeAllListeners('exit');
    await this.ask('exit').catch(() => undefined);
  }
}
