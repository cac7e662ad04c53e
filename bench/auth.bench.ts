/**
 * Authentication benchmark: one run, figures and ratios side by side.
 *
 *   npm run bench        (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/knox_bench)
 *
 * A child process (bench/support/bench-server.ts) boots, on one database, a Nest app on Express
 * and one on Fastify, each twice: without and with the KnoxModule cache. This process drives
 * them over keep-alive connections at a fixed concurrency, in interleaved rounds (order rotated
 * every round) so that the noise of a shared machine hits every route alike: compare the
 * ratios, not the absolute figures. Only the tables `bench_user` and `knox_bench_authtoken` are
 * touched.
 *
 * Then: scale (p50 of an uncached request with 1 000 and with 1 000 000 token rows; pruneExpired
 * on the 1 000 000 expired ones) and revocation latency (a second cached instance in another
 * process; a token cached in both, revoked on one or by SQL; time until the other refuses).
 *
 * Knobs: BENCH_SECONDS (2: seconds per route and platform per round), BENCH_ROUNDS (3),
 * BENCH_CONCURRENCY (10), BENCH_POOL (10), BENCH_SCALE_ROWS (1000000; 0 skips scale),
 * BENCH_REVOCATIONS (100 per path; 0 skips), BENCH_EXTRAS (1: also the knox 5 emulation,
 * unknown-token and login rows, on Express), BENCH_XACT_CHECK (1: cross-check the transaction
 * count with pg_stat_database, costs ~25 s of waiting for the statistics to be flushed),
 * BENCH_PREPARED (1: the uncached lookup alone, the query builder it used vs findByDigests as wired).
 */
import http from 'node:http';
import os from 'node:os';
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import {
  BENCH_LARGE_TABLE,
  BENCH_TOKEN_TABLE,
} from './support/bench-user.entity.js';
import type { ServerReady } from './support/bench-server.js';
import {
  median,
  quantile,
  runLoad,
  send,
  type RequestSpec,
} from './support/load.js';

const DATABASE_URL =
  process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/knox_bench';
const SECONDS = numberFromEnv('BENCH_SECONDS', 2);
const ROUNDS = numberFromEnv('BENCH_ROUNDS', 3);
const CONCURRENCY = numberFromEnv('BENCH_CONCURRENCY', 10);
const POOL_SIZE = numberFromEnv('BENCH_POOL', 10);
const SCALE_ROWS = numberFromEnv('BENCH_SCALE_ROWS', 1_000_000, 0);
const REVOCATIONS = numberFromEnv('BENCH_REVOCATIONS', 100, 0);
const EXTRAS = numberFromEnv('BENCH_EXTRAS', 1, 0) === 1;
const XACT_CHECK = numberFromEnv('BENCH_XACT_CHECK', 1, 0) === 1;
const PREPARED = numberFromEnv('BENCH_PREPARED', 1, 0) === 1;

function numberFromEnv(name: string, fallback: number, min = 0.001): number {
  const raw = process.env[name];
  const value = raw === undefined ? fallback : Number(raw);
  if (!Number.isFinite(value) || value < min) {
    throw new Error(`${name} must be a number >= ${min}; got ${raw}`);
  }
  return value;
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A server child process and a request/reply channel to it. */
class Server {
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
        'support',
        'bench-server.js',
      ),
      [],
      {
        env: {
          ...process.env,
          DATABASE_URL,
          BENCH_POOL: String(POOL_SIZE),
          BENCH_ROLE: role,
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

interface Cell {
  id: string;
  label: string;
  platform: 'express' | 'fastify';
  port: number;
  expectStatus: number;
  /** Requests of the warm-up (at least one pass over the tokens, so that a cache is full). */
  warmup: number;
  /**
   * Before each timed round, untimed, send the warm-up again: a cached route is measured in its
   * steady state (tokens in use within `maxAge`), however long the other routes took.
   */
  rewarm?: boolean;
  next: () => RequestSpec;
}

interface Round {
  rps: number;
  requests: number;
  queries: number;
  transactions: number;
  /** The server process's CPU time over the round (µs). */
  cpuUs: number;
  latenciesMs: Float64Array;
}

const cursor = <T>(list: T[]) => {
  let at = 0;
  return () => list[at++ % list.length];
};

function cells(ready: ServerReady): Cell[] {
  const out: Cell[] = [];
  const unknown = Array.from({ length: 1000 }, () =>
    randomBytes(32).toString('hex'),
  );
  for (const platform of ['express', 'fastify'] as const) {
    const plain = ready.ports[`${platform}-plain`];
    const cached = ready.ports[`${platform}-cached`];
    const tokenPass = ready.tokens.length;
    const knox = (c: () => string) => () => ({
      method: 'GET' as const,
      path: '/me',
      headers: { authorization: `Token ${c()}` },
    });
    out.push(
      {
        id: 'unguarded',
        label: 'unguarded',
        platform,
        port: plain,
        expectStatus: 200,
        warmup: 500,
        next: () => ({ method: 'GET', path: '/public' }),
      },
      {
        id: 'ceiling',
        label: 'ceiling: SHA-512 + Map lookup',
        platform,
        port: plain,
        expectStatus: 200,
        warmup: tokenPass,
        next: (() => {
          const c = cursor(ready.tokens);
          return () => ({
            method: 'GET' as const,
            path: '/ceiling/me',
            headers: { authorization: `Token ${c()}` },
          });
        })(),
      },
      {
        id: 'jwt',
        label: '@nestjs/jwt HS256 (KeyObject)',
        platform,
        port: plain,
        expectStatus: 200,
        warmup: tokenPass,
        next: (() => {
          const c = cursor(ready.jwts);
          return () => ({
            method: 'GET' as const,
            path: '/jwt/me',
            headers: { authorization: `Bearer ${c()}` },
          });
        })(),
      },
      {
        id: 'bearer',
        label: 'hand-written TypeORM bearer',
        platform,
        port: plain,
        expectStatus: 200,
        warmup: tokenPass,
        next: (() => {
          const c = cursor(ready.tokens);
          return () => ({
            method: 'GET' as const,
            path: '/bearer/me',
            headers: { authorization: `Bearer ${c()}` },
          });
        })(),
      },
      {
        id: 'knox',
        label: 'KnoxGuard, no cache',
        platform,
        port: plain,
        expectStatus: 200,
        warmup: tokenPass,
        next: knox(cursor(ready.tokens)),
      },
      {
        id: 'knox-cached',
        label: 'KnoxGuard, cache: true',
        platform,
        port: cached,
        expectStatus: 200,
        warmup: tokenPass,
        rewarm: true,
        next: knox(cursor(ready.tokens)),
      },
    );
    if (PREPARED) {
      for (const [id, label, route] of [
        [
          'lookup-qb',
          'uncached lookup: query builder (before)',
          '/lookup/query-builder',
        ],
        [
          'lookup-prepared',
          'uncached lookup: findByDigests (prepared, wired)',
          '/lookup/prepared',
        ],
      ]) {
        const c = cursor(ready.tokens);
        out.push({
          id,
          label,
          platform,
          port: plain,
          expectStatus: 200,
          warmup: tokenPass,
          next: () => ({
            method: 'GET' as const,
            path: route,
            headers: { authorization: `Token ${c()}` },
          }),
        });
      }
    }
    if (EXTRAS && platform === 'express') {
      const login = cursor(ready.loginUsernames);
      out.push(
        {
          id: 'knox5',
          label: 'knox 5 EMULATION (4 queries)',
          platform,
          port: plain,
          expectStatus: 200,
          warmup: 300,
          next: (() => {
            const c = cursor(ready.tokens);
            return () => ({
              method: 'GET' as const,
              path: '/knox5/me',
              headers: { authorization: `Token ${c()}` },
            });
          })(),
        },
        {
          id: 'malformed',
          label: 'KnoxGuard, malformed token (401, no query)',
          platform,
          port: cached,
          expectStatus: 401,
          warmup: 300,
          next: () => ({
            method: 'GET',
            path: '/me',
            headers: { authorization: 'Token not-a-knox-token-0123456789' },
          }),
        },
        {
          id: 'unknown',
          label: 'KnoxGuard, unknown token (401)',
          platform,
          port: cached,
          expectStatus: 401,
          warmup: 300,
          next: knox(cursor(unknown)),
        },
        {
          id: 'login',
          label: 'POST /auth/login',
          platform,
          port: plain,
          expectStatus: 200,
          warmup: 100,
          next: () => ({
            method: 'POST',
            path: '/auth/login',
            body: JSON.stringify({
              username: login(),
              password: ready.password,
            }),
          }),
        },
      );
    }
  }
  return out;
}

/** The installed version of a package (walks up from its resolved entry point). */
function versionOf(name: string): string {
  try {
    let dir = path.dirname(fileURLToPath(import.meta.resolve(name)));
    for (;;) {
      const file = path.join(dir, 'package.json');
      if (existsSync(file)) {
        const json = JSON.parse(readFileSync(file, 'utf8')) as {
          name?: string;
          version?: string;
        };
        if (json.name === name && json.version) {
          return json.version;
        }
      }
      const parent = path.dirname(dir);
      if (parent === dir) {
        return '?';
      }
      dir = parent;
    }
  } catch {
    return '?';
  }
}

function table(headers: string[], rows: string[][], right: boolean[]): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => row[column].length)),
  );
  const line = (cells: string[]) =>
    `| ${cells
      .map((cell, column) =>
        right[column]
          ? cell.padStart(widths[column])
          : cell.padEnd(widths[column]),
      )
      .join(' | ')} |`;
  const rule = `|${widths
    .map((width, column) =>
      right[column] ? `${'-'.repeat(width + 1)}:` : '-'.repeat(width + 2),
    )
    .join('|')}|`;
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

async function xactCount(db: pg.Client): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    'SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()',
  );
  return Number(rows[0].n);
}

async function runCell(
  server: Server,
  agent: http.Agent,
  cell: Cell,
  load: { count?: number; durationMs?: number },
): Promise<Round> {
  if (load.durationMs !== undefined && cell.rewarm) {
    await runLoad({
      agent,
      port: cell.port,
      concurrency: CONCURRENCY,
      count: cell.warmup,
      expectStatus: cell.expectStatus,
      next: cell.next,
    });
  }
  type Counters = { queries: number; transactions: number; cpuUs: number };
  const before = await server.ask<Counters>('counters');
  const result = await runLoad({
    agent,
    port: cell.port,
    concurrency: CONCURRENCY,
    ...load,
    expectStatus: cell.expectStatus,
    next: cell.next,
  });
  const after = await server.ask<Counters>('counters');
  return {
    rps: (result.requests / result.elapsedMs) * 1000,
    requests: result.requests,
    queries: after.queries - before.queries,
    transactions: after.transactions - before.transactions,
    cpuUs: after.cpuUs - before.cpuUs,
    latenciesMs: result.latenciesMs,
  };
}

const fmt = (n: number, digits = 0) =>
  n
    .toLocaleString('en-US', {
      maximumFractionDigits: digits,
      minimumFractionDigits: digits,
    })
    .replace(/,/g, ' ');

async function main(): Promise<void> {
  const startedAt = Date.now();
  const loadAtStart = os.loadavg();
  const db = new pg.Client({ connectionString: DATABASE_URL });
  try {
    await db.connect();
  } catch (error) {
    if ((error as { code?: string }).code === '3D000') {
      console.error(
        `The database of ${redact(DATABASE_URL)} does not exist; create it, e.g.\n` +
          `  psql -h 127.0.0.1 -U postgres -d postgres -c 'create database knox_bench'`,
      );
    }
    throw error;
  }
  const { server, ready } = await Server.start<ServerReady>('main');
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let peer: Server | undefined;
  try {
    const list = cells(ready);
    console.log('nestjs-knox authentication benchmark');
    console.log(
      `  node ${process.version}, ${os.platform()} ${os.arch()}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim() ?? '?'}), ` +
        `load average ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}`,
    );
    console.log(
      `  Nest ${versionOf('@nestjs/core')} on Express ${versionOf('express')} and Fastify ${versionOf('fastify')}, ` +
        `TypeORM ${versionOf('typeorm')}, pg ${versionOf('pg')} (pool ${POOL_SIZE}), @nestjs/jwt ${versionOf('@nestjs/jwt')}, ` +
        `lru-cache ${versionOf('lru-cache')}, PostgreSQL ${ready.pgVersion} at ${redact(DATABASE_URL)}`,
    );
    console.log(
      `  seed: 1 000 users, ${ready.tokens.length} of them with the token the bench uses; ${ready.tableRows} token rows`,
    );
    console.log(
      `  load: server in a child process, client here (keep-alive http.Agent), concurrency ${CONCURRENCY}, ` +
        `${ROUNDS} rounds x ${SECONDS} s per route and platform, order rotated each round, after a warm-up ` +
        `(one pass over the tokens). Cache: true (max 10000, maxAge 60 s, bus 'postgres'); the cached route is warmed again, untimed, before each round.\n`,
    );

    for (const cell of list) {
      await runCell(server, agent, cell, { count: cell.warmup });
    }
    let xactBefore = 0;
    if (XACT_CHECK) {
      await sleep(11_000); // idle backends flush their statistics within 10 s
      xactBefore = await xactCount(db);
    }
    const rounds = new Map<Cell, Round[]>(list.map((c) => [c, []]));
    for (let round = 0; round < ROUNDS; round++) {
      const shift = round % list.length;
      for (const cell of [...list.slice(shift), ...list.slice(0, shift)]) {
        rounds
          .get(cell)!
          .push(
            await runCell(server, agent, cell, { durationMs: SECONDS * 1000 }),
          );
      }
      process.stderr.write(`  round ${round + 1}/${ROUNDS} done\n`);
    }
    let counted = 0;
    for (const results of rounds.values()) {
      counted += results.reduce((sum, r) => sum + r.transactions, 0);
    }
    let xactLine = '';
    if (XACT_CHECK) {
      await sleep(11_000);
      const seen = (await xactCount(db)) - xactBefore - 1;
      xactLine =
        `pg_stat_database cross-check over the timed rounds: ${seen} transactions committed or rolled back in the database, ` +
        `${counted} counted at the driver (the difference is the listeners' pings, the counter round trips and autovacuum).`;
    }

    const find = (platform: string, id: string) =>
      list.find((c) => c.platform === platform && c.id === id);
    const paired = (cell: Cell, base: Cell | undefined) => {
      if (!base) {
        return NaN;
      }
      const a = rounds.get(cell)!;
      const b = rounds.get(base)!;
      return median(a.map((r, i) => r.rps / b[i].rps));
    };
    const stats = (cell: Cell) => {
      const results = rounds.get(cell)!;
      const requests = results.reduce((sum, r) => sum + r.requests, 0);
      const latencies = new Float64Array(requests);
      let offset = 0;
      for (const r of results) {
        latencies.set(r.latenciesMs, offset);
        offset += r.latenciesMs.length;
      }
      latencies.sort();
      return {
        rps: median(results.map((r) => r.rps)),
        p50: quantile(latencies, 0.5),
        p99: quantile(latencies, 0.99),
        queries: results.reduce((s, r) => s + r.queries, 0) / requests,
        transactions:
          results.reduce((s, r) => s + r.transactions, 0) / requests,
        cpuUs: results.reduce((s, r) => s + r.cpuUs, 0) / requests,
      };
    };
    /** `base`'s server CPU per request over `cell`'s: >1 when `cell` costs less. */
    const cpuRatio = (cell: Cell, base: Cell | undefined) =>
      base ? stats(base).cpuUs / stats(cell).cpuUs : NaN;
    const ids = [...new Set(list.map((c) => c.id))];
    const rows = ids.map((id) => {
      const cellsOf = (['express', 'fastify'] as const).map((p) => find(p, id));
      const label = cellsOf.find(Boolean)!.label;
      const cols: string[] = [label];
      let tx = '';
      for (const [i, cell] of cellsOf.entries()) {
        if (!cell) {
          cols.push('—', '—', '—');
          continue;
        }
        const s = stats(cell);
        cols.push(
          fmt(s.rps),
          `${paired(cell, find(cell.platform, 'unguarded')).toFixed(2)}`,
          `${s.p50.toFixed(2)} / ${s.p99.toFixed(2)}`,
        );
        if (i === 0 || !tx) {
          tx = `${s.transactions.toFixed(2)}`;
        }
      }
      cols.push(tx);
      return cols;
    });
    console.log(
      table(
        [
          'route',
          'Express req/s',
          'ratio',
          'p50 / p99 ms',
          'Fastify req/s',
          'ratio',
          'p50 / p99 ms',
          'DB tx/req',
        ],
        rows,
        [false, true, true, true, true, true, true, true],
      ),
    );
    console.log(
      `\nreq/s: median of the rounds; ratio: median of the per-round ratios to the unguarded route on the same ` +
        `platform; p50/p99 over all rounds; DB tx/req: transactions counted at the driver, per request (Express).`,
    );
    console.log(
      "\nServer CPU per request (the server process's user + system time over all timed rounds, divided by " +
        'their requests; the database server\'s work is not in it). "ratio" is the unguarded route\'s CPU per ' +
        "request over the route's: the throughput a CPU-bound server keeps, least moved by the machine's other load.",
    );
    console.log(
      table(
        ['route', 'Express µs/req', 'ratio', 'Fastify µs/req', 'ratio'],
        ids.map((id) => {
          const cols = [list.find((c) => c.id === id)!.label];
          for (const platform of ['express', 'fastify'] as const) {
            const cell = find(platform, id);
            cols.push(
              cell ? stats(cell).cpuUs.toFixed(0) : '—',
              cell
                ? cpuRatio(cell, find(platform, 'unguarded')).toFixed(2)
                : '—',
            );
          }
          return cols;
        }),
        [false, true, true, true, true],
      ),
    );
    for (const platform of ['express', 'fastify'] as const) {
      const c = find(platform, 'knox-cached')!;
      const k = find(platform, 'knox')!;
      console.log(
        `  ${platform}: cached KnoxGuard = ${paired(c, find(platform, 'ceiling')).toFixed(2)}x the ceiling, ` +
          `${paired(c, find(platform, 'jwt')).toFixed(2)}x @nestjs/jwt; uncached KnoxGuard = ` +
          `${paired(k, find(platform, 'bearer')).toFixed(2)}x the hand-written bearer guard ` +
          `(cached: ${stats(c).queries.toFixed(3)} statements/req, uncached: ${stats(k).queries.toFixed(2)}).`,
      );
      console.log(
        `  ${platform}, by server CPU per request: cached KnoxGuard = ${cpuRatio(c, find(platform, 'ceiling')).toFixed(2)}x the ceiling, ` +
          `${cpuRatio(c, find(platform, 'jwt')).toFixed(2)}x @nestjs/jwt; uncached KnoxGuard = ` +
          `${cpuRatio(k, find(platform, 'bearer')).toFixed(2)}x the hand-written bearer guard.`,
      );
      const qb = find(platform, 'lookup-qb');
      const prepared = find(platform, 'lookup-prepared');
      if (qb && prepared) {
        console.log(
          `  ${platform}: lookup as wired (KnoxTokenStore.findByDigests, prepared) = ${paired(prepared, qb).toFixed(2)}x the req/s of the query builder ` +
            `(p50 ${stats(prepared).p50.toFixed(2)} vs ${stats(qb).p50.toFixed(2)} ms).`,
        );
      }
    }
    if (xactLine) {
      console.log(xactLine);
    }
    const micro = await server.ask<{
      serviceUs: number;
      guardUs: number;
      ceilingUs: number;
    }>('micro');
    console.log(
      `In process, without HTTP (100 cached tokens in turn, median of 3 rounds of 50 000): KnoxGuard.canActivate ` +
        `${micro.guardUs.toFixed(1)} µs vs the ceiling guard's work (header, SHA-512, Map.get) ${micro.ceilingUs.toFixed(1)} µs ` +
        `(${(micro.ceilingUs / micro.guardUs).toFixed(2)}x); KnoxTokenService.authenticate (a promise) ${micro.serviceUs.toFixed(1)} µs.`,
    );
    if (PREPARED) {
      const lookup = await server.ask<{
        preparedUs: number;
        queryBuilderUs: number;
        preparedCpuUs: number;
        queryBuilderCpuUs: number;
      }>('lookup');
      console.log(
        `In process, the uncached lookup alone (10 at a time, median of 3 rounds of 3 000): ` +
          `findByDigests as wired (named prepared statement) ${lookup.preparedUs.toFixed(0)} µs per lookup and ` +
          `${lookup.preparedCpuUs.toFixed(0)} µs of server-process CPU; the query builder ` +
          `${lookup.queryBuilderUs.toFixed(0)} µs and ${lookup.queryBuilderCpuUs.toFixed(0)} µs of CPU ` +
          `(${(lookup.queryBuilderUs / lookup.preparedUs).toFixed(2)}x the time, ` +
          `${(lookup.queryBuilderCpuUs / lookup.preparedCpuUs).toFixed(2)}x the CPU).`,
      );
    }

    if (SCALE_ROWS > 0) {
      await scale(server, agent, db, ready);
    }
    if (REVOCATIONS > 0) {
      const started = await Server.start<{ ports: Record<string, number> }>(
        'peer',
      );
      peer = started.server;
      await revocation(
        db,
        ready,
        ready.ports['express-cached'],
        started.ready.ports['express-cached'],
      );
    }
    console.log(
      `\nDone in ${((Date.now() - startedAt) / 1000).toFixed(1)} s; load average now ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}.`,
    );
  } finally {
    agent.destroy();
    await peer?.stop();
    await server.stop();
    await db.end();
  }
}

async function p50Round(
  server: Server,
  agent: http.Agent,
  port: number,
  tokens: string[],
): Promise<number> {
  const next = cursor(tokens);
  const cell: Cell = {
    id: 'scale',
    label: 'scale',
    platform: 'express',
    port,
    expectStatus: 200,
    warmup: 0,
    next: () => ({
      method: 'GET',
      path: '/me',
      headers: { authorization: `Token ${next()}` },
    }),
  };
  const r = await runCell(server, agent, cell, { durationMs: SECONDS * 1000 });
  return quantile(r.latenciesMs.slice().sort(), 0.5);
}

async function scale(
  server: Server,
  agent: http.Agent,
  db: pg.Client,
  ready: ServerReady,
) {
  const COLUMNS =
    'digest, token_key, id, user_id, created, expiry, ttl_ms, name, user_agent, ip, last_used_at, retired_at';
  // The small table: back to its 1 000 seeded rows (the login rows' tokens go: users 901-1000).
  await db.query(`DELETE FROM ${BENCH_TOKEN_TABLE} WHERE user_id > 900`);
  // The large one: the same 1 000 rows, plus expired ones (they weigh on the lookup like live
  // ones, and pruneExpired gets them next).
  const filled = performance.now();
  await db.query(
    `INSERT INTO ${BENCH_LARGE_TABLE} (${COLUMNS}) SELECT ${COLUMNS} FROM ${BENCH_TOKEN_TABLE}`,
  );
  await db.query(
    `INSERT INTO ${BENCH_LARGE_TABLE} (digest, token_key, user_id, created, expiry)
     SELECT d, left(d, 15), 1 + (g % 1000), now() - interval '2 days', now() - interval '1 day'
       FROM generate_series(1, $1::int) AS g,
            LATERAL (SELECT encode(sha512(convert_to('filler' || g || $2::text, 'UTF8')), 'hex') AS d) AS x`,
    [SCALE_ROWS, randomBytes(8).toString('hex')],
  );
  await db.query(`VACUUM ANALYZE ${BENCH_LARGE_TABLE}`);
  await db.query(`VACUUM ANALYZE ${BENCH_TOKEN_TABLE}`);
  await db.query('CHECKPOINT');
  const fillSeconds = (performance.now() - filled) / 1000;
  const count = async (table: string) =>
    Number(
      (await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`))
        .rows[0].n,
    );
  const [smallRows, largeRows] = [
    await count(BENCH_TOKEN_TABLE),
    await count(BENCH_LARGE_TABLE),
  ];
  const ports = [ready.ports['express-plain'], ready.ports['express-large']];
  for (const port of ports) {
    await p50Round(server, agent, port, ready.tokens);
  }
  const p50s: number[][] = [[], []];
  for (let round = 0; round < ROUNDS; round++) {
    for (const which of round % 2 ? [1, 0] : [0, 1]) {
      p50s[which].push(
        await p50Round(server, agent, ports[which], ready.tokens),
      );
    }
  }
  const [small, large] = p50s.map((p) => median(p));
  const ratios = p50s[1].map((p, i) => p / p50s[0][i]);
  console.log(
    `\nScale (Express, KnoxGuard without the cache, two apps on two tables, ${ROUNDS} interleaved rounds of ${SECONDS} s, concurrency ${CONCURRENCY}):`,
  );
  console.log(
    `  ${fmt(smallRows)} token rows: p50 ${small.toFixed(2)} ms; ${fmt(largeRows)} rows: p50 ${large.toFixed(2)} ms; ` +
      `ratio ${median(ratios).toFixed(2)} (median of the per-round ratios; the table filled in ${fillSeconds.toFixed(0)} s)`,
  );
  const prune = await server.ask<{
    deleted: number;
    totalMs: number;
    batches: number;
    longestMs: number;
    batchesMs: number[];
  }>('prune');
  const sorted = Float64Array.from(prune.batchesMs).sort();
  console.log(
    `  pruneExpired on ${fmt(prune.deleted)} expired rows: ${(prune.totalMs / 1000).toFixed(1)} s in ${prune.batches} batches ` +
      `of the default batchSize; per batch (the time its row locks are held: one autocommit DELETE) p50 ${quantile(sorted, 0.5).toFixed(1)} ms, ` +
      `p99 ${quantile(sorted, 0.99).toFixed(1)} ms, longest ${prune.longestMs.toFixed(1)} ms ` +
      `(with the cache triggers installed: each batch also NOTIFYs its digests)`,
  );
}

async function revocation(
  db: pg.Client,
  ready: ServerReady,
  portA: number,
  portB: number,
) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const get = (port: number, token: string) =>
    send(agent, port, {
      method: 'GET',
      path: '/me',
      headers: { authorization: `Token ${token}` },
    });
  const users = cursor(ready.loginUsernames);
  const results: Record<string, number[]> = {
    'logout on the other instance': [],
    'SQL DELETE (psql)': [],
  };
  /** When the last request the other instance accepted was sent, after the revocation. */
  const lastSent: Record<string, number[]> = Object.fromEntries(
    Object.keys(results).map((path) => [path, [] as number[]]),
  );
  let staleOnA = 0;
  try {
    for (let i = 0; i < REVOCATIONS; i++) {
      for (const path of Object.keys(results)) {
        const login = await send(agent, portA, {
          method: 'POST',
          path: '/auth/login',
          body: JSON.stringify({ username: users(), password: ready.password }),
        });
        const token = (JSON.parse(login.body) as { token: string }).token;
        for (const port of [portA, portA, portB, portB]) {
          const warm = await get(port, token);
          if (warm.status !== 200) {
            throw new Error(`warm-up: ${warm.status}`);
          }
        }
        if (path === 'SQL DELETE (psql)') {
          await db.query(
            `DELETE FROM ${BENCH_TOKEN_TABLE} WHERE token_key = $1`,
            [token.slice(0, 15)],
          );
        } else {
          const out = await send(agent, portA, {
            method: 'POST',
            path: '/auth/logout',
            headers: { authorization: `Token ${token}` },
          });
          if (out.status !== 204) {
            throw new Error(`logout: ${out.status}`);
          }
          if ((await get(portA, token)).status !== 401) {
            staleOnA++;
          }
        }
        const revoked = performance.now();
        let lastAccepted = 0;
        for (;;) {
          const sent = performance.now() - revoked;
          const res = await get(portB, token);
          if (res.status === 401) {
            results[path].push(performance.now() - revoked);
            lastSent[path].push(lastAccepted);
            break;
          }
          lastAccepted = sent;
          if (performance.now() - revoked > 5000) {
            throw new Error(
              'the other instance still accepts a revoked token after 5 s',
            );
          }
        }
      }
    }
  } finally {
    agent.destroy();
  }
  console.log(
    `\nRevocation latency (two cached Express instances in two processes on one database; token cached in both; ` +
      `time from the revocation's commit until the other instance answers 401, polled back to back; ${REVOCATIONS} per path):`,
  );
  for (const [path, times] of Object.entries(results)) {
    const sorted = Float64Array.from(times).sort();
    console.log(
      `  ${path}: p50 ${quantile(sorted, 0.5).toFixed(1)} ms, p99 ${quantile(sorted, 0.99).toFixed(1)} ms, max ${sorted[sorted.length - 1].toFixed(1)} ms`,
    );
    const sent = Float64Array.from(lastSent[path]).sort();
    console.log(
      `    the last accepted request was sent p50 ${quantile(sent, 0.5).toFixed(1)} ms, p99 ${quantile(sent, 0.99).toFixed(1)} ms, ` +
        `max ${sent[sent.length - 1].toFixed(1)} ms after the revocation (what the instance knew; the rest is HTTP under load)`,
    );
  }
  console.log(
    `  the revoking instance itself served the revoked token ${staleOnA} times after its logout returned.`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
