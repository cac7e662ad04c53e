/**
 * Authentication benchmark: figures and ratios side by side, in one process and one run.
 *
 *   npm run build && tsc -p bench/tsconfig.json && node bench/dist/auth.bench.js
 *
 * Boots a real Nest app (Express) on 127.0.0.1, seeds users and tokens in PostgreSQL
 * (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/knox_bench; only the tables
 * `bench_user` and `knox_bench_authtoken` are touched), and drives it with a keep-alive
 * http.Agent at a fixed concurrency. Scenarios run in interleaved rounds (their order rotated
 * every round) so that the noise of a shared machine hits all of them alike: compare the
 * ratios, not the absolute figures.
 *
 * Knobs: BENCH_CONCURRENCY (8), BENCH_ROUNDS (10), BENCH_REQUESTS (3000 per scenario, split
 * over the rounds), BENCH_POOL (10).
 */
import http from 'node:http';
import os from 'node:os';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KnoxToken } from 'nestjs-knox';
import {
  LAST_USED_UPDATE_INTERVAL,
  bootBenchApp,
  type BenchApp,
} from './support/bench-app.js';
import {
  BENCH_TOKEN_TABLE,
  BenchToken,
  BenchUser,
} from './support/bench-user.entity.js';
import { median, quantile, runLoad, type RequestSpec } from './support/load.js';

const DATABASE_URL =
  process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/knox_bench';
const CONCURRENCY = intFromEnv('BENCH_CONCURRENCY', 8);
const ROUNDS = intFromEnv('BENCH_ROUNDS', 10);
const REQUESTS = intFromEnv('BENCH_REQUESTS', 3000);
const POOL_SIZE = intFromEnv('BENCH_POOL', 10);
const PER_ROUND = Math.ceil(REQUESTS / ROUNDS);

const USERS = 1000;
/** Users 0..TOKEN_USERS-1 hold the token the bench authenticates with; the rest log in. */
const TOKEN_USERS = 900;
/** Every other token user also holds this many live and expired sibling tokens. */
const LIVE_SIBLINGS = 5;
const EXPIRED_SIBLINGS = 4;
const PASSWORD = 'bench-password';
const HOUR = 60 * 60 * 1000;

interface Scenario {
  id: string;
  label: string;
  expectStatus: number;
  /** Requests per round (and in the warm-up). */
  perRound: number;
  warmup: number;
  next: (index: number) => RequestSpec;
  /** Untimed preparation before each round (and the warm-up) of `count` requests. */
  beforeRound?: (count: number) => Promise<void>;
}

interface Round {
  rps: number;
  queries: number;
  writes: number;
  requests: number;
  latenciesMs: Float64Array;
}

function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`${name} must be a whole number >= 1; got ${raw}`);
  }
  return value;
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

const sha512 = (token: string) =>
  createHash('sha512').update(token, 'utf8').digest('hex');

function tokenRow(
  userId: number,
  created: Date,
  expiry: Date | null,
): { token: string; row: Partial<KnoxToken> } {
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
    },
  };
}

async function insertChunked(
  bench: BenchApp,
  rows: Partial<KnoxToken>[],
): Promise<void> {
  const repository = bench.dataSource.getRepository(BenchToken);
  for (let start = 0; start < rows.length; start += 1000) {
    await repository
      .createQueryBuilder()
      .insert()
      .values(rows.slice(start, start + 1000))
      .orIgnore()
      .execute();
  }
}

interface Seed {
  /** One live token per token user, in user order. */
  tokens: string[];
  /** The users that also hold siblings: their token and their expired siblings' rows. */
  heavy: { token: string; expired: Partial<KnoxToken>[] }[];
  loginUsernames: string[];
  tableRows: number;
}

async function seed(bench: BenchApp): Promise<Seed> {
  const { dataSource } = bench;
  await dataSource.query(
    `TRUNCATE ${BENCH_TOKEN_TABLE}, bench_user RESTART IDENTITY CASCADE`,
  );
  const usernames = Array.from(
    { length: USERS },
    (_, i) => `user${String(i).padStart(4, '0')}`,
  );
  const inserted = await dataSource
    .getRepository(BenchUser)
    .insert(usernames.map((username) => ({ username, password: PASSWORD })));
  const ids = inserted.identifiers.map((identifier) => identifier.id as number);
  const now = Date.now();
  const tokens: string[] = [];
  const heavy: Seed['heavy'] = [];
  const rows: Partial<KnoxToken>[] = [];
  for (let i = 0; i < TOKEN_USERS; i++) {
    const main = tokenRow(
      ids[i],
      new Date(now - HOUR),
      new Date(now + 9 * HOUR),
    );
    tokens.push(main.token);
    rows.push(main.row);
    if (i % 2 !== 0) {
      continue;
    }
    const expired: Partial<KnoxToken>[] = [];
    heavy.push({ token: main.token, expired });
    for (let k = 0; k < LIVE_SIBLINGS; k++) {
      rows.push(
        tokenRow(
          ids[i],
          new Date(now - (k + 2) * HOUR),
          new Date(now + (8 - k) * HOUR),
        ).row,
      );
    }
    for (let k = 0; k < EXPIRED_SIBLINGS; k++) {
      expired.push(
        tokenRow(
          ids[i],
          new Date(now - (k + 11) * HOUR),
          new Date(now - (k + 1) * HOUR),
        ).row,
      );
    }
  }
  const expiredRows = heavy.flatMap((user) => user.expired);
  await insertChunked(bench, [...rows, ...expiredRows]);
  return {
    tokens,
    heavy,
    loginUsernames: usernames.slice(TOKEN_USERS),
    tableRows: rows.length + expiredRows.length,
  };
}

function scenarios(bench: BenchApp, data: Seed): Scenario[] {
  const bearer = (token: string) => ({ authorization: `Token ${token}` });
  const unknown = Array.from({ length: 1000 }, () =>
    randomBytes(32).toString('hex'),
  );
  // Each scenario keeps its own cursor, so that rounds go on where the last one stopped.
  const cursor = (list: string[]) => {
    let at = 0;
    return () => list[at++ % list.length];
  };
  const knoxToken = cursor(data.tokens);
  const knox5Token = cursor(data.tokens);
  const unknownToken = cursor(unknown);
  const loginUser = cursor(data.loginUsernames);
  const onePass = data.tokens.length;
  // 3b: before each round, the next users holding siblings get their expired siblings back,
  // and the round sends exactly one request per such user.
  const expiredPerRound = Math.min(data.heavy.length, Math.ceil(PER_ROUND / 2));
  let heavyNext = 0;
  let heavyStart = 0;
  const heavyAt = (index: number) =>
    data.heavy[(heavyStart + index) % data.heavy.length];
  return [
    {
      id: '1',
      label: 'GET /public, no auth (framework floor)',
      expectStatus: 200,
      perRound: PER_ROUND,
      warmup: 500,
      next: () => ({ method: 'GET', path: '/public' }),
    },
    {
      id: '2',
      label: 'GET /me, KnoxGuard, valid token',
      expectStatus: 200,
      perRound: PER_ROUND,
      warmup: onePass,
      next: () => ({
        method: 'GET',
        path: '/me',
        headers: bearer(knoxToken()),
      }),
    },
    {
      id: '3',
      label: 'GET /knox5/me, knox 5 EMULATION, valid token',
      expectStatus: 200,
      perRound: PER_ROUND,
      warmup: onePass,
      next: () => ({
        method: 'GET',
        path: '/knox5/me',
        headers: bearer(knox5Token()),
      }),
    },
    {
      id: '3b',
      label: `same, ${EXPIRED_SIBLINGS} expired siblings to delete`,
      expectStatus: 200,
      perRound: expiredPerRound,
      warmup: expiredPerRound,
      next: (index) => ({
        method: 'GET',
        path: '/knox5/me',
        headers: bearer(heavyAt(index).token),
      }),
      beforeRound: async (count) => {
        heavyStart = heavyNext;
        heavyNext += count;
        const rows = Array.from({ length: count }, (_, i) => heavyAt(i));
        await insertChunked(
          bench,
          rows.flatMap((user) => user.expired),
        );
      },
    },
    {
      id: '4',
      label: 'GET /me, malformed token (401, no query)',
      expectStatus: 401,
      perRound: PER_ROUND,
      warmup: 500,
      next: () => ({
        method: 'GET',
        path: '/me',
        headers: bearer('not-a-knox-token-0123456789'),
      }),
    },
    {
      id: '5',
      label: 'GET /me, unknown well-formed token (401)',
      expectStatus: 401,
      perRound: PER_ROUND,
      warmup: 500,
      next: () => ({
        method: 'GET',
        path: '/me',
        headers: bearer(unknownToken()),
      }),
    },
    {
      id: '6',
      label: 'POST /auth/login, issue a token',
      expectStatus: 200,
      perRound: PER_ROUND,
      warmup: 300,
      next: () => ({
        method: 'POST',
        path: '/auth/login',
        body: JSON.stringify({ username: loginUser(), password: PASSWORD }),
      }),
    },
  ];
}

async function runRound(
  bench: BenchApp,
  agent: http.Agent,
  scenario: Scenario,
  count: number,
): Promise<Round> {
  await scenario.beforeRound?.(count);
  bench.counter.reset();
  const result = await runLoad({
    agent,
    port: bench.port,
    concurrency: CONCURRENCY,
    count,
    expectStatus: scenario.expectStatus,
    next: scenario.next,
  });
  return {
    rps: (count / result.elapsedMs) * 1000,
    queries: bench.counter.queries,
    writes: bench.counter.writes,
    requests: count,
    latenciesMs: result.latenciesMs,
  };
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

async function main(): Promise<void> {
  const startedAt = Date.now();
  const loadAtStart = os.loadavg();
  let bench: BenchApp;
  try {
    bench = await bootBenchApp(DATABASE_URL, POOL_SIZE);
  } catch (error) {
    if ((error as { code?: string }).code === '3D000') {
      console.error(
        `The database of ${redact(DATABASE_URL)} does not exist; create it, e.g.\n` +
          `  psql -h 127.0.0.1 -U postgres -d postgres -c 'create database knox_bench'`,
      );
    }
    throw error;
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  try {
    const [{ server_version: pgVersion }] = (await bench.dataSource.query(
      'SHOW server_version',
    )) as { server_version: string }[];
    const data = await seed(bench);
    const list = scenarios(bench, data);

    console.log('nestjs-knox authentication benchmark');
    console.log(
      `  node ${process.version}, ${os.platform()} ${os.arch()}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim() ?? '?'}), ` +
        `load average ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}`,
    );
    console.log(
      `  Nest ${versionOf('@nestjs/core')} on Express ${versionOf('express')}, TypeORM ${versionOf('typeorm')}, ` +
        `pg ${versionOf('pg')} (pool ${POOL_SIZE}), PostgreSQL ${pgVersion} at ${redact(DATABASE_URL)}`,
    );
    console.log(
      `  seed: ${USERS} users; ${TOKEN_USERS} hold the token the bench uses, ${data.heavy.length} of them ` +
        `${1 + LIVE_SIBLINGS + EXPIRED_SIBLINGS} tokens (${LIVE_SIBLINGS} live and ${EXPIRED_SIBLINGS} expired siblings); ` +
        `${data.loginUsernames.length} log in; ${data.tableRows} token rows`,
    );
    console.log(
      `  load: one process (client and server share the event loop), keep-alive http.Agent, ` +
        `concurrency ${CONCURRENCY}, ${ROUNDS} rounds x ${PER_ROUND} requests per scenario ` +
        `(3b: ${list.find((s) => s.id === '3b')!.perRound}), order rotated each round, after a warm-up per scenario`,
    );
    console.log(
      `  knox options: loginThrottle false, lastUsedUpdateInterval ${LAST_USED_UPDATE_INTERVAL / HOUR} h, other defaults\n`,
    );

    for (const scenario of list) {
      await runRound(bench, agent, scenario, scenario.warmup);
    }

    const rounds = new Map<string, Round[]>(list.map((s) => [s.id, []]));
    for (let round = 0; round < ROUNDS; round++) {
      const order = [
        ...list.slice(round % list.length),
        ...list.slice(0, round % list.length),
      ];
      for (const scenario of order) {
        rounds
          .get(scenario.id)!
          .push(await runRound(bench, agent, scenario, scenario.perRound));
      }
      process.stderr.write(`  round ${round + 1}/${ROUNDS} done\n`);
    }

    // Ratios are paired: each round's figure over scenario 2's in the same round, then the
    // median of those, so that a slow spell of the machine cancels out.
    const perRound = (id: string) => rounds.get(id)!.map((r) => r.rps);
    const pairedRatios = (id: string, baseId: string) =>
      perRound(id).map((rps, round) => rps / perRound(baseId)[round]);
    const summary = list.map((scenario) => {
      const results = rounds.get(scenario.id)!;
      const requests = results.reduce((sum, r) => sum + r.requests, 0);
      const latencies = new Float64Array(requests);
      let offset = 0;
      for (const r of results) {
        latencies.set(r.latenciesMs, offset);
        offset += r.latenciesMs.length;
      }
      latencies.sort();
      const rps = perRound(scenario.id);
      return {
        scenario,
        rps: median(rps),
        min: Math.min(...rps),
        max: Math.max(...rps),
        ratio: median(pairedRatios(scenario.id, '2')),
        p50: quantile(latencies, 0.5),
        p99: quantile(latencies, 0.99),
        queries: results.reduce((sum, r) => sum + r.queries, 0) / requests,
        writes: results.reduce((sum, r) => sum + r.writes, 0) / requests,
      };
    });
    console.log(
      table(
        [
          '#',
          'scenario',
          'req/s (median)',
          'rounds min-max',
          'vs 2',
          'p50 ms',
          'p99 ms',
          'queries/req',
          'writes/req',
        ],
        summary.map((s) => [
          s.scenario.id,
          s.scenario.label,
          s.rps.toFixed(0),
          `${s.min.toFixed(0)}-${s.max.toFixed(0)}`,
          `${s.ratio.toFixed(2)}x`,
          s.p50.toFixed(2),
          s.p99.toFixed(2),
          s.queries.toFixed(2),
          s.writes.toFixed(2),
        ]),
        [false, false, true, true, true, true, true, true, true],
      ),
    );
    const fix = pairedRatios('2', '3');
    const [base, emulation] = ['2', '3'].map((id) =>
      summary.find((s) => s.scenario.id === id)!,
    );
    console.log(
      `\nThe fix (2 vs 3): KnoxGuard serves ${median(fix).toFixed(2)}x the req/s of the knox 5 emulation ` +
        `(per-round ratios ${Math.min(...fix).toFixed(2)}-${Math.max(...fix).toFixed(2)}), ` +
        `at ${(base.p50 / emulation.p50).toFixed(2)}x its p50 latency, with ` +
        `${base.queries.toFixed(2)} instead of ${emulation.queries.toFixed(2)} queries per request.`,
    );
    console.log(
      'req/s: median of the rounds; vs 2: median of the per-round ratios to scenario 2; ' +
        'p50/p99: over all rounds pooled; queries/req: every statement TypeORM sends ' +
        '(START TRANSACTION and COMMIT included).',
    );
    console.log(
      `Done in ${((Date.now() - startedAt) / 1000).toFixed(1)} s; load average now ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}.`,
    );
  } finally {
    agent.destroy();
    await bench.app.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
