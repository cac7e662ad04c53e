/**
 * The cache's buses side by side on PostgreSQL: LISTEN/NOTIFY (`bus: 'postgres'`) and the
 * invalidation log read every `pollInterval` ms (`bus: 'poll'`).
 *
 *   npm run bench:bus    (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/knox_bench)
 *
 * For each bus, two cached Express instances in two processes on one database:
 * - revocation latency: a token cached in both, revoked on one (logout) or by SQL (DELETE);
 *   the time from the revocation's commit until the other answers 401, polled back to back;
 * - idle cost per instance, over BENCH_IDLE_SECONDS with no request: the statements the
 *   database ran (pg_stat_database, the bench database alone), the instance's CPU, and the CPU
 *   of its PostgreSQL backend that listens or polls (/proc, same machine only).
 *
 * Knobs: BENCH_REVOCATIONS (100 per path), BENCH_IDLE_SECONDS (30), BENCH_POLL_INTERVAL (the
 * default, 50).
 */
import http from 'node:http';
import os from 'node:os';
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { BENCH_TOKEN_TABLE } from './support/bench-user.entity.js';
import { quantile, send } from './support/load.js';

const DATABASE_URL =
  process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/knox_bench';
const REVOCATIONS = Number(process.env.BENCH_REVOCATIONS ?? 100);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 30);
const POLL_INTERVAL = process.env.BENCH_POLL_INTERVAL;
const PASSWORD = 'bench-password';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A bus-server child and a request/reply channel to it. */
class Instance {
  private nextId = 1;
  private readonly waiting = new Map<number, (reply: any) => void>();
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {
    child.on('message', (message: { id?: number; reply?: unknown }) => {
      const resolve = message.id ? this.waiting.get(message.id) : undefined;
      if (resolve) {
        this.waiting.delete(message.id!);
        resolve(message.reply);
      }
    });
  }

  static start(bus: string): Promise<Instance> {
    const child = fork(
      path.join(
        path.dirname(fileURLToPath(import.meta.url)),
        'support',
        'bus-server.js',
      ),
      [],
      {
        env: {
          ...process.env,
          DATABASE_URL,
          BENCH_BUS: bus,
          ...(POLL_INTERVAL ? { BENCH_POLL_INTERVAL: POLL_INTERVAL } : {}),
        },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      },
    );
    return new Promise((resolve, reject) => {
      child.once('message', (ready: { port: number }) =>
        resolve(new Instance(child, ready.port)),
      );
      child.once('exit', (code) =>
        reject(new Error(`bus server exited with ${code}`)),
      );
    });
  }

  ask<T>(cmd: 'cpu' | 'exit'): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve) => {
      this.waiting.set(id, resolve);
      this.child.send({ id, cmd });
    });
  }

  async stop(): Promise<void> {
    this.child.removeAllListeners('exit');
    await this.ask('exit').catch(() => undefined);
  }
}

interface BusFigures {
  latency: Record<string, Float64Array>;
  statementsPerSecond: number;
  instanceCpu: number;
  backendCpu: number | undefined;
}

/** A backend's CPU time so far (ms), from /proc (the database on this machine). */
function backendCpuMs(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8')
      .split(') ')[1]
      .split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return undefined;
  }
}

async function ensureUser(db: pg.Client): Promise<void> {
  await db.query(
    `INSERT INTO bench_user (username, password) VALUES ('bus-bench', $1) ON CONFLICT (username) DO NOTHING`,
    [PASSWORD],
  );
}

async function revocations(
  db: pg.Client,
  a: Instance,
  b: Instance,
): Promise<Record<string, Float64Array>> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const get = (port: number, token: string) =>
    send(agent, port, {
      method: 'GET',
      path: '/me',
      headers: { authorization: `Token ${token}` },
    });
  const results: Record<string, number[]> = {
    logout: [],
    'SQL DELETE': [],
    'logout, last accepted request sent': [],
    'SQL DELETE, last accepted request sent': [],
  };
  try {
    for (let i = 0; i < REVOCATIONS; i++) {
      for (const way of ['logout', 'SQL DELETE']) {
        const login = await send(agent, a.port, {
          method: 'POST',
          path: '/auth/login',
          body: JSON.stringify({ username: 'bus-bench', password: PASSWORD }),
        });
        const token = (JSON.parse(login.body) as { token: string }).token;
        for (const port of [a.port, a.port, b.port, b.port]) {
          if ((await get(port, token)).status !== 200) {
            throw new Error('warm-up refused');
          }
        }
        // At a random point of the other instance's poll cycle: each revocation would otherwise
        // come the same few ms after the read that saw the previous one (phase-locked).
        await sleep(Math.random() * 250);
        if (way === 'SQL DELETE') {
          await db.query(
            `DELETE FROM ${BENCH_TOKEN_TABLE} WHERE token_key = $1`,
            [token.slice(0, 15)],
          );
        } else {
          await send(agent, a.port, {
            method: 'POST',
            path: '/auth/logout',
            headers: { authorization: `Token ${token}` },
          });
        }
        const revoked = performance.now();
        let lastAccepted = 0;
        for (;;) {
          const sent = performance.now() - revoked;
          if ((await get(b.port, token)).status === 401) {
            break;
          }
          lastAccepted = sent;
          if (sent > 5000) {
            throw new Error('still accepted 5 s after the revocation');
          }
        }
        results[way].push(performance.now() - revoked);
        results[`${way}, last accepted request sent`].push(lastAccepted);
      }
    }
  } finally {
    agent.destroy();
  }
  return Object.fromEntries(
    Object.entries(results).map(([way, times]) => [
      way,
      Float64Array.from(times).sort(),
    ]),
  );
}

async function statements(db: pg.Client): Promise<number> {
  const [row] = (
    await db.query<{ n: string }>(
      `SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()`,
    )
  ).rows;
  return Number(row.n);
}

/** Idle cost of the two instances: statements/s each, their CPU and their backends'. */
async function idle(db: pg.Client, instances: Instance[], application: string) {
  const pids = (
    await db.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()`,
      [application],
    )
  ).rows.map((r) => r.pid);
  // A backend that went idle flushes its statistics 10 s later (PostgreSQL 15): let the pool
  // connections of the revocations flush theirs before the window opens. Our own probes are
  // one transaction each; a busy backend flushes at most once a second.
  await sleep(11_000);
  const before = await statements(db);
  const cpuBefore = await Promise.all(
    instances.map((i) => i.ask<{ cpuUs: number }>('cpu')),
  );
  const backendBefore = pids.map(backendCpuMs);
  const started = performance.now();
  await sleep(IDLE_SECONDS * 1000);
  const seconds = (performance.now() - started) / 1000;
  const cpuAfter = await Promise.all(
    instances.map((i) => i.ask<{ cpuUs: number }>('cpu')),
  );
  const backendAfter = pids.map(backendCpuMs);
  await sleep(1500);
  const after = await statements(db);
  const instanceCpu =
    cpuAfter.reduce((sum, c, k) => sum + c.cpuUs - cpuBefore[k].cpuUs, 0) /
    instances.length /
    1e6 /
    seconds;
  const backendMs = backendAfter.map((v, k) =>
    v === undefined || backendBefore[k] === undefined
      ? undefined
      : v - backendBefore[k]!,
  );
  const backendCpu = backendMs.every((v) => v !== undefined)
    ? backendMs.reduce((s, v) => s + v!, 0) /
      Math.max(1, pids.length) /
      1000 /
      seconds
    : undefined;
  return {
    statementsPerSecond: Math.max(
      0,
      (after - before - 2) / seconds / instances.length,
    ),
    instanceCpu,
    backendCpu,
  };
}

async function measure(db: pg.Client, bus: string): Promise<BusFigures> {
  const a = await Instance.start(bus);
  const b = await Instance.start(bus);
  try {
    await ensureUser(db);
    const latency = await revocations(db, a, b);
    const cost = await idle(
      db,
      [a, b],
      bus === 'poll' ? 'knox-cache-poller' : 'knox-cache-listener',
    );
    return { latency, ...cost };
  } finally {
    await a.stop();
    await b.stop();
  }
}

const ms = (v: number) => `${v.toFixed(1)} ms`;
const pct = (v: number | undefined) =>
  v === undefined ? 'n/a' : `${(v * 100).toFixed(2)} %`;

function print(figures: Record<string, BusFigures>): void {
  const buses = Object.keys(figures);
  const rows: [string, (f: BusFigures) => string][] = [];
  for (const way of Object.keys(figures[buses[0]].latency)) {
    rows.push([
      way.includes('sent')
        ? `  (${way}) p50 / p99 / max`
        : `revocation (${way}) on the other instance, p50 / p99 / max`,
      (f) => {
        const s = f.latency[way];
        return `${ms(quantile(s, 0.5))} / ${ms(quantile(s, 0.99))} / ${ms(s[s.length - 1])}`;
      },
    ]);
  }
  rows.push(
    [
      'idle: statements/s per instance',
      (f) => f.statementsPerSecond.toFixed(1),
    ],
    ['idle: instance CPU (share of a core)', (f) => pct(f.instanceCpu)],
    ['idle: its PostgreSQL backend CPU', (f) => pct(f.backendCpu)],
  );
  const width = Math.max(...rows.map(([label]) => label.length));
  console.log(
    `${''.padEnd(width)}  ${buses.map((b) => b.padEnd(28)).join('')}`,
  );
  for (const [label, cell] of rows) {
    console.log(
      `${label.padEnd(width)}  ${buses.map((b) => cell(figures[b]).padEnd(28)).join('')}`,
    );
  }
}

async function main(): Promise<void> {
  const db = new pg.Client({ connectionString: DATABASE_URL });
  await db.connect();
  try {
    console.log('nestjs-knox cache buses on PostgreSQL');
    console.log(
      `  node ${process.version}, ${os.cpus().length} CPUs, load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(
          ' ',
        )}; two cached Express instances per bus, ${REVOCATIONS} revocations per path, idle ${IDLE_SECONDS} s; ` +
        `poll interval ${POLL_INTERVAL ?? '50 (default)'} ms\n`,
    );
    const figures: Record<string, BusFigures> = {};
    figures["'postgres' (LISTEN)"] = await measure(db, 'postgres');
    figures[`'poll'`] = await measure(db, 'poll');
    print(figures);
  } finally {
    await db.end();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
