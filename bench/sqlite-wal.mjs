// Measures whether SQLite's WAL mode matters for two instances (two DataSources, as two processes
// would) on one file: each runs 8 writers (the library's write transaction: read, insert, delete)
// and 8 readers (the request path's lookup) through the library's queue for 3 s.
// Run: npm run build && node bench/sqlite-wal.mjs
import { DataSource } from 'typeorm';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  knoxSqliteSerial,
  knoxSqliteTransaction,
} from '../dist/store/knox-sqlite-transactions.js';

const SECONDS = 3;

function p99(values) {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length * 0.99)] ?? 0;
}

async function run(wal) {
  const dir = mkdtempSync(join(tmpdir(), 'knox-wal-'));
  const file = join(dir, 'db.sqlite');
  const open = async () => {
    const ds = new DataSource({
      type: 'better-sqlite3',
      database: file,
      enableWAL: wal,
      timeout: 5000,
    });
    await ds.initialize();
    return ds;
  };
  const a = await open();
  const b = await open();
  await a.query('CREATE TABLE t (id INTEGER PRIMARY KEY, u INTEGER, v TEXT)');
  await a.query('CREATE INDEX t_u ON t (u)');
  for (let i = 0; i < 1000; i++) {
    await a.query('INSERT INTO t (u, v) VALUES (?, ?)', [
      i % 50,
      'x'.repeat(64),
    ]);
  }
  const until = performance.now() + SECONDS * 1000;
  const stats = { writes: [], reads: [], failed: 0 };
  const loop = async (ds, write) => {
    for (let i = 0; performance.now() < until; i++) {
      const started = performance.now();
      try {
        if (write) {
          await knoxSqliteTransaction(ds, async (m) => {
            await m.query('SELECT count(*) FROM t WHERE u = ?', [i % 50]);
            await m.query('INSERT INTO t (u, v) VALUES (?, ?)', [
              i % 50,
              'y'.repeat(64),
            ]);
            await m.query(
              'DELETE FROM t WHERE id = (SELECT min(id) FROM t WHERE u = ?)',
              [i % 50],
            );
          });
        } else {
          await knoxSqliteSerial(ds, () =>
            ds.query('SELECT * FROM t WHERE u = ?', [i % 50]),
          );
        }
        (write ? stats.writes : stats.reads).push(performance.now() - started);
      } catch {
        stats.failed++;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  const workers = [];
  for (const ds of [a, b]) {
    for (let k = 0; k < 8; k++) workers.push(loop(ds, true), loop(ds, false));
  }
  await Promise.all(workers);
  console.log(
    `WAL ${wal ? 'on ' : 'off'}: ${Math.round(stats.writes.length / SECONDS)} write transactions/s (p99 ${p99(stats.writes).toFixed(1)} ms), ` +
      `${Math.round(stats.reads.length / SECONDS)} reads/s (p99 ${p99(stats.reads).toFixed(1)} ms), failed ${stats.failed}`,
  );
  await a.destroy();
  await b.destroy();
  rmSync(dir, { recursive: true });
}

for (let trial = 0; trial < 2; trial++) {
  await run(false);
  await run(true);
}
