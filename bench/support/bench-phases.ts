/**
 * The benchmark's phases after the interleaved rounds: scale (PostgreSQL), revocation latency
 * across two instances in two processes, and the cache bus's idle cost.
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { BENCH_LARGE_TABLE, BENCH_TOKEN_TABLE } from './bench-user.entity.js';
import type { ServerReady } from './bench-server.js';
import { cursor, runCell, type Cell } from './bench-cells.js';
import type { RawDb } from './bench-db.js';
import { fmt } from './bench-format.js';
import { median, quantile, send } from './load.js';
import {
  CONCURRENCY,
  IDLE_SECONDS,
  REVOCATIONS,
  ROUNDS,
  SCALE_ROWS,
  SECONDS,
  sleep,
  type Counters,
  type Server,
} from './bench-process.js';

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

export async function scale(
  server: Server,
  agent: http.Agent,
  db: RawDb,
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
      (await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`))[0]
        .n,
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

export async function revocation(
  db: RawDb,
  ready: ServerReady,
  bus: { label: string; pollInterval?: number },
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
    'SQL DELETE (another client)': [],
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
        if (bus.pollInterval) {
          // At a random point of the other instance's poll cycle: back to back, each revocation
          // would come the same few ms after the read that saw the previous one (phase-locked).
          await sleep(Math.random() * 2 * bus.pollInterval);
        }
        if (path !== 'logout on the other instance') {
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
    `\nRevocation latency (two cached Express instances in two processes on one database, bus ${bus.label}; token cached in both; ` +
      `time from the revocation's commit until the other instance answers 401, polled back to back; ${REVOCATIONS} per path` +
      `${bus.pollInterval ? ', each revocation at a random point of the poll cycle' : ''}):`,
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
/**
 * The cache bus's idle cost, over IDLE_SECONDS without a request: the statements each instance's
 * bus sends on its own connection (the poll bus's reads and prunes), per second and instance;
 * what the apps' own pools sent meanwhile; the peer process's CPU (one cached instance alone).
 */
export async function idle(
  main: Server,
  peer: Server,
  cachedOnMain: number,
  busLabel: string,
): Promise<void> {
  await sleep(1000);
  const ask = () =>
    Promise.all([
      main.ask<Counters>('counters'),
      peer.ask<Counters>('counters'),
    ]);
  const before = await ask();
  const started = performance.now();
  await sleep(IDLE_SECONDS * 1000);
  const after = await ask();
  const seconds = (performance.now() - started) / 1000;
  const delta = (k: 0 | 1, key: keyof Counters) =>
    (after[k][key] - before[k][key]) / seconds;
  console.log(
    `\nIdle cost of the bus (${busLabel}), ${IDLE_SECONDS} s without a request, counted at the driver on the bus's own connection:`,
  );
  if (delta(0, 'pollerQueries') + delta(1, 'pollerQueries') === 0) {
    console.log(
      '  no statement: the LISTEN bus sends none (its pings: see npm run bench:bus, which reads pg_stat_database).',
    );
  }
  console.log(
    `  ${delta(1, 'pollerQueries').toFixed(1)} statements/s for the peer's instance, ` +
      `${(delta(0, 'pollerQueries') / cachedOnMain).toFixed(1)} per instance in the main process (${cachedOnMain} cached instances there); ` +
      `the apps' own pools meanwhile: ${(delta(0, 'queries') + delta(1, 'queries')).toFixed(2)} statements/s in all; ` +
      `the peer process's CPU ${(delta(1, 'cpuUs') / 1e4).toFixed(2)} % of a core.`,
  );
}
