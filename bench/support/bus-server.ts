/**
 * One cached Express instance in a process of its own, for the cache-bus benchmark
 * (bench/cache-bus.bench.ts): the bus comes from BENCH_BUS (`postgres` or `poll`), the poll
 * interval from BENCH_POLL_INTERVAL. Answers the parent over IPC: `cpu` (this process's CPU
 * time so far, µs) and `exit`.
 */
import { randomBytes, createSecretKey } from 'node:crypto';
import { bootBenchApp } from './bench-app.js';

const bus = process.env.BENCH_BUS === 'poll' ? 'poll' : 'postgres';
const pollInterval = process.env.BENCH_POLL_INTERVAL
  ? Number(process.env.BENCH_POLL_INTERVAL)
  : undefined;

async function main(): Promise<void> {
  const app = await bootBenchApp({
    databaseUrl: process.env.DATABASE_URL!,
    poolSize: 4,
    platform: 'express',
    cache: {
      max: 10_000,
      maxAge: 60_000,
      bus,
      ...(bus === 'poll' && pollInterval ? { pollInterval } : {}),
    },
    jwtSecret: createSecretKey(randomBytes(32)),
  });
  process.send!({ port: app.port, pid: process.pid });
  process.on('message', (message: { id: number; cmd: 'cpu' | 'exit' }) => {
    void (async () => {
      let reply: unknown;
      if (message.cmd === 'cpu') {
        const cpu = process.cpuUsage();
        reply = { cpuUs: cpu.user + cpu.system };
      } else {
        await app.app.close();
        reply = { closed: true };
      }
      process.send!({ id: message.id, reply });
      if (message.cmd === 'exit') {
        process.exit(0);
      }
    })();
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
