/**
 * The server side of the benchmark, in a child process of its own (so that the load generator
 * does not share its event loop). Role `main` boots, on one database, Express and Fastify, each
 * once without and once with the cache; seeds the tables; answers the parent over IPC. Role
 * `peer` boots one more cached Express instance (the other instance of the revocation test).
 */
import { createSecretKey, randomBytes, randomUUID } from 'node:crypto';
import type { ExecutionContext } from '@nestjs/common';
import { KnoxGuard, KnoxTokenService, type KnoxToken } from 'nestjs-knox';
import {
  CEILING_MAP,
  bootBenchApp,
  sha512,
  signJwt,
  type BenchApp,
} from './bench-app.js';
import {
  BENCH_LARGE_TABLE,
  BENCH_TOKEN_TABLE,
  BenchToken,
  BenchUser,
} from './bench-user.entity.js';
import { DbCounter } from './db-counter.js';
import { benchDbKind, emptyTablesSql, serverVersion } from './bench-db.js';

export const USERS = 1000;
/** Users 0..TOKEN_USERS-1 hold the token the bench authenticates with; the rest log in. */
export const TOKEN_USERS = 900;
const PASSWORD = 'bench-password';
const HOUR = 60 * 60 * 1000;

export interface ServerReady {
  ports: Record<string, number>;
  tokens: string[];
  jwts: string[];
  loginUsernames: string[];
  password: string;
  tableRows: number;
  /** The database server's version (`PostgreSQL 17.2`, `MariaDB/MySQL 11.4.2-MariaDB`, `SQLite 3.46.1`). */
  dbVersion: string;
  /** The cache's bus as configured (`auto`: `postgres` on PostgreSQL, `poll` elsewhere). */
  bus: string;
}

export type ServerCommand =
  | { cmd: 'counters' }
  | { cmd: 'prune' }
  | { cmd: 'micro' }
  | { cmd: 'lookup' }
  | { cmd: 'exit' };

const counter = new DbCounter();
counter.install();

const DATABASE_URL = process.env.DATABASE_URL!;
const KIND = benchDbKind(DATABASE_URL);
const POOL = Number(process.env.BENCH_POOL ?? 10);
/** `auto` (unset): the cache's default bus, 'postgres' on PostgreSQL and 'poll' elsewhere. */
const BUS = (process.env.BENCH_BUS ?? 'auto') as 'auto' | 'postgres' | 'poll';
const POLL_INTERVAL = process.env.BENCH_POLL_INTERVAL
  ? Number(process.env.BENCH_POLL_INTERVAL)
  : undefined;
const CACHE = {
  max: 10_000,
  maxAge: 60_000,
  ...(BUS === 'auto' ? {} : { bus: BUS }),
  ...(POLL_INTERVAL ? { pollInterval: POLL_INTERVAL } : {}),
};

function tokenRow(userId: number, created: Date, expiry: Date | null) {
  const token = randomBytes(32).toString('hex');
  return {
    token,
    row: {
      digest: sha512(token),
      tokenKey: token.slice(0, 15),
      id: randomUUID(),
      user: { id: userId },
      created,
      expiry,
      ttl: null,
      name: null,
      userAgent: null,
      ip: null,
      lastUsedAt: null,
    } as Partial<KnoxToken>,
  };
}

/** 1 000 users, 900 of them with one live token; 100 more live sibling tokens: 1 000 rows. */
async function seed(bench: BenchApp) {
  const { dataSource } = bench;
  for (const statement of emptyTablesSql(KIND, [
    BENCH_TOKEN_TABLE,
    'bench_user',
  ])) {
    await dataSource.query(statement);
  }
  const usernames = Array.from(
    { length: USERS },
    (_, i) => `user${String(i).padStart(4, '0')}`,
  );
  // In chunks: SQLite's expression depth limit (TypeORM re-reads the defaults with one OR each).
  const ids: number[] = [];
  for (let start = 0; start < USERS; start += 200) {
    const inserted = await dataSource
      .getRepository(BenchUser)
      .insert(
        usernames
          .slice(start, start + 200)
          .map((username) => ({ username, password: PASSWORD })),
      );
    ids.push(
      ...inserted.identifiers.map((identifier) => identifier.id as number),
    );
  }
  const now = Date.now();
  const tokens: string[] = [];
  const rows: Partial<KnoxToken>[] = [];
  for (let i = 0; i < TOKEN_USERS; i++) {
    const main = tokenRow(
      ids[i],
      new Date(now - HOUR),
      new Date(now + 9 * HOUR),
    );
    tokens.push(main.token);
    rows.push(main.row);
    CEILING_MAP.set(main.row.digest!, { id: ids[i], username: usernames[i] });
  }
  for (let i = 0; i < USERS - TOKEN_USERS; i++) {
    rows.push(
      tokenRow(ids[i], new Date(now - 2 * HOUR), new Date(now + 8 * HOUR)).row,
    );
  }
  const repository = dataSource.getRepository(BenchToken);
  for (let start = 0; start < rows.length; start += 500) {
    await repository.insert(rows.slice(start, start + 500));
  }
  const jwts = tokens.map((_, i) =>
    signJwt(bench, { id: ids[i], username: usernames[i] }),
  );
  return {
    tokens,
    jwts,
    loginUsernames: usernames.slice(TOKEN_USERS),
    tableRows: rows.length,
  };
}

/** A minimal HTTP ExecutionContext around a request with `authorization`. */
function httpContext(authorization: string): ExecutionContext {
  const request = { headers: { authorization } };
  const http = { getRequest: () => request, getResponse: () => ({}) };
  return {
    getType: () => 'http',
    getHandler: () => httpContext,
    getClass: () => BenchToken,
    switchToHttp: () => http,
  } as unknown as ExecutionContext;
}

/** µs per call of `run` over `n` calls (awaiting only what returns a promise). */
async function perCall(
  n: number,
  run: (i: number) => unknown,
): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    if (i % 500 === 499) {
      // Let timers and I/O run: the poll bus vouches for the cache on a timer, and a loop of
      // resolved promises alone would starve it (the cache then bypassed as not vouched for).
      await new Promise((resolve) => setImmediate(resolve));
    }
    const result = run(i);
    if (result instanceof Promise) {
      await result;
    }
  }
  return ((performance.now() - started) / n) * 1000;
}

/**
 * In-process cost of one authentication, without HTTP, over 100 cached tokens in turn,
 * interleaved, 3 rounds of 50 000 each (median µs): KnoxTokenService.authenticate; KnoxGuard's
 * canActivate on a minimal HTTP context (what a request pays: header, cache, checks, marks);
 * and the ceiling guard's work (header, SHA-512, Map.get, request.user).
 */
async function micro(bench: BenchApp, tokens: string[]) {
  const service = bench.app.get(KnoxTokenService);
  const guard = bench.app.get(KnoxGuard);
  const sample = tokens.slice(0, 100);
  const headers = sample.map((t) => `Token ${t}`);
  const map = new Map(sample.map((t) => [sha512(t), t]));
  for (const token of sample) {
    await service.authenticate(token);
  }
  const ceilingGuard = (context: ExecutionContext) => {
    const request = context.switchToHttp().getRequest<{
      headers: { authorization: string };
      user?: unknown;
    }>();
    const user = map.get(sha512(request.headers.authorization.slice(6)));
    if (!user) {
      throw new Error('ceiling: token not found');
    }
    request.user = user;
    return true;
  };
  const runs = { service: [0], guard: [0], ceiling: [0] };
  const N = 50_000;
  for (let round = 0; round < 3; round++) {
    runs.service[round] = await perCall(N, (i) =>
      service.authenticate(sample[i % 100]),
    );
    runs.guard[round] = await perCall(N, (i) =>
      guard.canActivate(httpContext(headers[i % 100])),
    );
    runs.ceiling[round] = await perCall(N, (i) =>
      ceilingGuard(httpContext(headers[i % 100])),
    );
  }
  const mid = (values: number[]) => values.sort((a, b) => a - b)[1];
  return {
    serviceUs: mid(runs.service),
    guardUs: mid(runs.guard),
    ceilingUs: mid(runs.ceiling),
  };
}

/** The lookup alone, as wired, and the query builder it replaced. */
type LookupWay = 'prepared' | 'queryBuilder';

/**
 * The uncached lookup alone, in process: `KnoxTokenStore.findByDigests` (the named statement)
 * against the query builder it replaced, 10 at a time, interleaved rounds. Wall time per lookup,
 * and this process's CPU time per lookup (what the server spends, less sensitive to other load).
 */
async function lookupMicro(bench: BenchApp, tokens: string[]) {
  // Not public API: the service's store (KnoxTokenStore is not exported).
  const { store } = bench.app.get(KnoxTokenService) as unknown as {
    store: { findByDigests(digests: string[]): Promise<unknown[]> };
  };
  const repository = bench.dataSource.getRepository(BenchToken);
  const digests = tokens.slice(0, 100).map(sha512);
  const ways: Record<LookupWay, (digest: string) => Promise<unknown[]>> = {
    prepared: (digest) => store.findByDigests([digest]),
    queryBuilder: (digest) =>
      repository
        .createQueryBuilder('token')
        .innerJoinAndSelect('token.user', 'user')
        .where('token.digest = :digest', { digest })
        .getMany(),
  };
  const N = 3000;
  const wall: Record<LookupWay, number[]> = { prepared: [], queryBuilder: [] };
  const cpu: Record<LookupWay, number[]> = { prepared: [], queryBuilder: [] };
  for (let round = 0; round < 4; round++) {
    const order: LookupWay[] =
      round % 2 ? ['queryBuilder', 'prepared'] : ['prepared', 'queryBuilder'];
    for (const way of order) {
      let next = 0;
      const cpuStart = process.cpuUsage();
      const started = performance.now();
      await Promise.all(
        Array.from({ length: 10 }, async () => {
          while (next < N) {
            const rows = await ways[way](digests[next++ % digests.length]);
            if (rows.length !== 1) {
              throw new Error(`lookup ${way}: ${rows.length} rows`);
            }
          }
        }),
      );
      const used = process.cpuUsage(cpuStart);
      if (round > 0) {
        // Round 0 warms both (statements prepared on every pooled connection).
        wall[way].push(((performance.now() - started) / N) * 1000);
        cpu[way].push((used.user + used.system) / N);
      }
    }
  }
  const mid = (values: number[]) => values.sort((a, b) => a - b)[1];
  return {
    preparedUs: mid(wall.prepared),
    queryBuilderUs: mid(wall.queryBuilder),
    preparedCpuUs: mid(cpu.prepared),
    queryBuilderCpuUs: mid(cpu.queryBuilder),
  };
}

async function main(): Promise<void> {
  const role = process.env.BENCH_ROLE ?? 'main';
  const jwtSecret = createSecretKey(randomBytes(32));
  const boot = async (
    platform: 'express' | 'fastify',
    cache: boolean,
    tableName?: string,
  ) => {
    const app = await bootBenchApp({
      databaseUrl: DATABASE_URL,
      poolSize: POOL,
      platform,
      cache: cache ? CACHE : false,
      jwtSecret,
      tableName,
    });
    const sqlite = (app.dataSource.driver as { databaseConnection?: object })
      .databaseConnection;
    if (KIND === 'sqlite' && sqlite) {
      counter.registerSqlite(sqlite);
    }
    return app;
  };
  const apps: Record<string, BenchApp> = {};
  let tokensOf: string[] = [];
  if (role === 'peer') {
    apps['express-cached'] = await boot('express', true);
    process.send!({
      ports: { 'express-cached': apps['express-cached'].port },
    });
  } else {
    apps['express-plain'] = await boot('express', false);
    const data = await seed(apps['express-plain']);
    tokensOf = data.tokens;
    apps['fastify-plain'] = await boot('fastify', false);
    apps['express-cached'] = await boot('express', true);
    apps['fastify-cached'] = await boot('fastify', true);
    if (process.env.BENCH_SCALE === '1') {
      // The scale figure's app (PostgreSQL): KnoxGuard without the cache on a table of its
      // own, filled later.
      apps['express-large'] = await boot('express', false, BENCH_LARGE_TABLE);
      await apps['express-large'].dataSource.query(
        `TRUNCATE ${BENCH_LARGE_TABLE}`,
      );
    }
    const dbVersion = await serverVersion(
      (sql) => apps['express-plain'].dataSource.query(sql),
      KIND,
    );
    const ready: ServerReady = {
      ports: Object.fromEntries(
        Object.entries(apps).map(([name, app]) => [name, app.port]),
      ),
      ...data,
      password: PASSWORD,
      dbVersion,
      bus: BUS,
    };
    process.send!(ready);
  }

  process.on('message', (message: ServerCommand & { id: number }) => {
    void (async () => {
      let reply: unknown;
      if (message.cmd === 'counters') {
        const cpu = process.cpuUsage();
        reply = {
          queries: counter.queries,
          transactions: counter.transactions,
          pollerQueries: counter.pollerQueries,
          // The server process's CPU time so far (user + system, µs): per request, the figure
          // least moved by what else runs on the machine.
          cpuUs: cpu.user + cpu.system,
        };
      } else if (message.cmd === 'prune') {
        counter.timed = [];
        counter.timedPattern =
          /^DELETE FROM .* WHERE ctid = ANY\(ARRAY\(SELECT/;
        const started = performance.now();
        const deleted = await apps['express-large'].app
          .get(KnoxTokenService)
          .pruneExpired();
        const totalMs = performance.now() - started;
        counter.timedPattern = null;
        reply = {
          deleted,
          totalMs,
          batches: counter.timed.length,
          longestMs: Math.max(...counter.timed),
          batchesMs: counter.timed,
        };
      } else if (message.cmd === 'micro') {
        reply = await micro(apps['express-cached'], tokensOf);
      } else if (message.cmd === 'lookup') {
        reply = await lookupMicro(apps['express-plain'], tokensOf);
      } else if (message.cmd === 'exit') {
        await Promise.all(Object.values(apps).map((app) => app.app.close()));
        reply = { closed: true };
      }
      process.send!({ id: message.id, reply });
      if (message.cmd === 'exit') {
        process.exit(0);
      }
    })().catch((error: unknown) => {
      process.send!({ id: message.id, error: String(error) });
    });
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
