/**
 * Authentication benchmark: one run, figures and ratios side by side.
 *
 *   npm run bench                      (PostgreSQL: DATABASE_URL, default postgres://postgres@127.0.0.1:5432/knox_bench)
 *   BENCH_DB=mariadb npm run bench     (DATABASE_URL=mysql://…, default mysql://root@127.0.0.1:3306/knox_bench)
 *   BENCH_DB=sqlite npm run bench      (DATABASE_URL=sqlite:<file>, default a temp file, removed after)
 *
 * The database is BENCH_DB (postgres | mariadb | sqlite) or else the scheme of DATABASE_URL.
 * A child process (bench/support/bench-server.ts) boots, on that database, a Nest app on Express
 * and one on Fastify, each twice: without and with the KnoxModule cache. This process drives
 * them over keep-alive connections at a fixed concurrency, in interleaved rounds (order rotated
 * every round) so that the noise of a shared machine hits every route alike: compare the
 * ratios, not the absolute figures. Only the tables `bench_user` and `knox_bench_authtoken` are
 * touched (and the cache's `knox_cache_log` on MariaDB and SQLite).
 *
 * Then: scale (PostgreSQL: p50 of an uncached request with 1 000 and with 1 000 000 token rows;
 * pruneExpired on the 1 000 000 expired ones), revocation latency (a second cached instance in
 * another process; a token cached in both, revoked on one or by SQL; time until the other
 * refuses) and the bus's idle cost (statements/s per instance on the bus's own connection).
 * Statements are counted at the driver (pg, mysql2, better-sqlite3: bench/support/db-counter.ts).
 *
 * Knobs: BENCH_SECONDS (2: seconds per route and platform per round), BENCH_ROUNDS (3),
 * BENCH_CONCURRENCY (10), BENCH_POOL (10), BENCH_SCALE_ROWS (1000000; 0 skips scale; PostgreSQL
 * only), BENCH_REVOCATIONS (100 per path; 0 skips), BENCH_IDLE_SECONDS (10: the bus's idle cost;
 * 0 skips), BENCH_BUS (auto: the cache's default bus, 'postgres' on PostgreSQL and 'poll'
 * elsewhere; or postgres | poll), BENCH_POLL_INTERVAL (the poll bus's, default 50 ms),
 * BENCH_SQLITE_WAL (0: TypeORM's default rollback journal; 1: WAL), BENCH_EXTRAS (1: also the
 * knox 5 emulation, unknown-token and login rows, on Express), BENCH_XACT_CHECK (1: cross-check
 * the transaction count with pg_stat_database, costs ~25 s of waiting for the statistics to be
 * flushed; PostgreSQL only), BENCH_PREPARED (1: the uncached lookup alone, the query builder it
 * used vs findByDigests as wired; PostgreSQL only, where the lookup is a named prepared
 * statement), BENCH_ONLY (all: a comma-separated list of the routes' ids to run, e.g.
 * `bearer,knox,ceiling,knox-cached`; the unguarded route always runs). What is PostgreSQL-only is skipped elsewhere, and the output says so.
 */
import http from 'node:http';
import os from 'node:os';
import type { ServerReady } from './support/bench-server.js';
import { median, quantile } from './support/load.js';
import { openRawDb, redact, type RawDb } from './support/bench-db.js';
import {
  cells,
  runCell,
  type Cell,
  type Round,
} from './support/bench-cells.js';
import { fmt, table, versionOf } from './support/bench-format.js';
import { idle, revocation, scale } from './support/bench-phases.js';
import {
  CONCURRENCY,
  DB,
  BUS,
  IDLE_SECONDS,
  POLL_INTERVAL,
  POOL_SIZE,
  PREPARED,
  REVOCATIONS,
  ROUNDS,
  SCALE_ROWS,
  SECONDS,
  XACT_CHECK,
  Server,
  sleep,
} from './support/bench-process.js';

/** The cache's bus as the apps run it, and the poll interval when it polls. */
const BUS_IN_USE =
  BUS === 'auto' ? (DB.kind === 'postgres' ? 'postgres' : 'poll') : BUS;
const POLL_EVERY =
  BUS_IN_USE === 'poll' ? Number(POLL_INTERVAL ?? 50) : undefined;
const DRIVER = { postgres: 'pg', mariadb: 'mysql2', sqlite: 'better-sqlite3' }[
  DB.kind
];

async function xactCount(db: RawDb): Promise<number> {
  const [row] = await db.query<{ n: string }>(
    'SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()',
  );
  return Number(row.n);
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  const loadAtStart = os.loadavg();
  const db = await openRawDb(DB.url);
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
        `TypeORM ${versionOf('typeorm')}, ${DRIVER} ${versionOf(DRIVER)} (${DB.kind === 'sqlite' ? `one connection per DataSource${process.env.BENCH_SQLITE_WAL === '1' ? ', WAL' : ', rollback journal'}` : `pool ${POOL_SIZE}`}), ` +
        `@nestjs/jwt ${versionOf('@nestjs/jwt')}, lru-cache ${versionOf('lru-cache')}, ${ready.dbVersion} at ${redact(DB.url)}`,
    );
    if (DB.kind !== 'postgres') {
      console.log(
        `  PostgreSQL only, skipped here: scale (1 000 000 rows), the pg_stat_database cross-check, the prepared-lookup rows (named statements).`,
      );
    }
    console.log(
      `  seed: 1 000 users, ${ready.tokens.length} of them with the token the bench uses; ${ready.tableRows} token rows`,
    );
    console.log(
      `  load: server in a child process, client here (keep-alive http.Agent), concurrency ${CONCURRENCY}, ` +
        `${ROUNDS} rounds x ${SECONDS} s per route and platform, order rotated each round, after a warm-up ` +
        `(one pass over the tokens). Cache: true (max 10000, maxAge 60 s, bus '${BUS_IN_USE}'${POLL_EVERY ? `, every ${POLL_EVERY} ms` : ''}); the cached route is warmed again, untimed, before each round.\n`,
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
      const c = find(platform, 'knox-cached');
      const k = find(platform, 'knox');
      if (!c || !k) {
        continue;
      }
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
        { label: `'${BUS_IN_USE}'`, pollInterval: POLL_EVERY },
        ready.ports['express-cached'],
        started.ready.ports['express-cached'],
      );
      if (IDLE_SECONDS > 0) {
        // Two cached instances in the main process (Express and Fastify), one in the peer.
        await idle(server, peer, 2, `'${BUS_IN_USE}'`);
      }
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
    await db.close();
    DB.cleanup();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
