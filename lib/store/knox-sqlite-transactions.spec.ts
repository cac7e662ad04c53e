import { afterEach, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataSource, type EntityManager } from 'typeorm';
import {
  isBusy,
  knoxSqliteSerial,
  knoxSqliteTransaction,
} from './knox-sqlite-transactions.js';

/** A real better-sqlite3 connection, as "another process" on the same file. */
const Sqlite = createRequire(import.meta.url)('better-sqlite3') as new (
  file: string,
  options?: { timeout?: number },
) => {
  exec(sql: string): void;
  close(): void;
};

const dirs: string[] = [];
const sources: DataSource[] = [];

function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'knox-sqlite-tx-'));
  dirs.push(dir);
  return join(dir, 'db.sqlite');
}

async function open(file: string, timeout = 5_000): Promise<DataSource> {
  const ds = new DataSource({
    type: 'better-sqlite3',
    database: file,
    timeout,
  });
  await ds.initialize();
  sources.push(ds);
  await ds.query(
    'CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)',
  );
  await ds.query('INSERT OR IGNORE INTO counter (id, n) VALUES (1, 0)');
  return ds;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Read, yield to the event loop, write: lost updates show when units interleave. */
async function increment(manager: EntityManager): Promise<void> {
  const [{ n }] = (await manager.query(
    'SELECT n FROM counter WHERE id = 1',
  )) as {
    n: number;
  }[];
  await pause(Math.random() * 3);
  await manager.query('UPDATE counter SET n = ? WHERE id = 1', [n + 1]);
}

async function count(ds: DataSource): Promise<number> {
  const [{ n }] = (await ds.query('SELECT n FROM counter WHERE id = 1')) as {
    n: number;
  }[];
  return n;
}

afterEach(async () => {
  for (const ds of sources.splice(0)) {
    if (ds.isInitialized) await ds.destroy();
  }
  for (const dir of dirs.splice(0))
    rmSync(dir, { recursive: true, force: true });
});

describe('TypeORM on better-sqlite3, without the queue', () => {
  it('fails two concurrent transactions on one DataSource (one connection, one runner)', async () => {
    const ds = await open(tempFile());
    const results = await Promise.allSettled([
      ds.transaction(increment),
      ds.transaction(increment),
    ]);
    expect(
      results.map((r) => r.status === 'rejected' && String(r.reason)),
    ).toContain(
      'QueryFailedError: SqliteError: cannot start a transaction within a transaction',
    );
  });

  it('runs a statement sent while a transaction is open inside it', async () => {
    const ds = await open(tempFile());
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const tx = ds.transaction(async (m) => {
      await m.query('UPDATE counter SET n = 41 WHERE id = 1');
      await held;
      throw new Error('rolls back');
    });
    await pause(5);
    // Another request's autocommit write, on the DataSource ...
    await ds.query('UPDATE counter SET n = n + 1 WHERE id = 1');
    expect(await count(ds)).toBe(42);
    release();
    await expect(tx).rejects.toThrow('rolls back');
    // ... is undone by the rollback of a transaction it had nothing to do with.
    expect(await count(ds)).toBe(0);
  });
});

describe('knoxSqliteTransaction', () => {
  it('runs concurrent transactions on one DataSource one at a time', async () => {
    const ds = await open(tempFile());
    for (let trial = 0; trial < 5; trial++) {
      await ds.query('UPDATE counter SET n = 0');
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, () => knoxSqliteTransaction(ds, increment)),
      );
      expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
      expect(await count(ds)).toBe(20);
    }
  });

  it('keeps a rolled-back transaction from undoing the others', async () => {
    const ds = await open(tempFile());
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        knoxSqliteTransaction(ds, async (m) => {
          await increment(m);
          if (i % 2 === 0) throw new Error(`refused ${i}`);
        }),
      ),
    );
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(5);
    expect(await count(ds)).toBe(5);
  });

  it('serialises two DataSources (two instances) on one file with BEGIN IMMEDIATE', async () => {
    const file = tempFile();
    const [a, b] = [await open(file), await open(file)];
    for (let trial = 0; trial < 5; trial++) {
      await a.query('UPDATE counter SET n = 0');
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) =>
          knoxSqliteTransaction(i % 2 ? a : b, increment),
        ),
      );
      expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
      expect(await count(a)).toBe(20);
    }
  });

  it('waits for another connection holding the write lock without blocking the event loop, then fails busy', async () => {
    const file = tempFile();
    const ds = await open(file, 300);
    const other = new Sqlite(file, { timeout: 0 });
    other.exec('BEGIN EXCLUSIVE');
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const started = Date.now();
    const error = await knoxSqliteTransaction(ds, increment).catch(
      (e: unknown) => e,
    );
    clearInterval(timer);
    expect(isBusy(error)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    expect(ticks).toBeGreaterThan(10);
    other.exec('ROLLBACK');
    other.close();
    // Back: the next transaction works on the same connection.
    await knoxSqliteTransaction(ds, increment);
    expect(await count(ds)).toBe(1);
  });

  it('gets the lock once another connection releases it within the busy timeout', async () => {
    const file = tempFile();
    const ds = await open(file, 2_000);
    const other = new Sqlite(file);
    other.exec('BEGIN IMMEDIATE');
    setTimeout(() => other.exec('COMMIT'), 100);
    await knoxSqliteTransaction(ds, increment);
    other.close();
    expect(await count(ds)).toBe(1);
  });

  it('waits for a transaction of the app open on the connection instead of joining it', async () => {
    const ds = await open(tempFile());
    const order: string[] = [];
    const app = ds.transaction(async (m) => {
      await m.query('UPDATE counter SET n = 100 WHERE id = 1');
      await pause(30);
      order.push('app commits');
    });
    await pause(1);
    await knoxSqliteTransaction(ds, async (m) => {
      order.push(`knox reads ${await count(m.connection)}`);
      await increment(m);
    });
    await app;
    expect(order).toEqual(['app commits', 'knox reads 100']);
    expect(await count(ds)).toBe(101);
  });
});

describe('knoxSqliteSerial', () => {
  it('never runs inside one of the library’s open transactions', async () => {
    const ds = await open(tempFile());
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const tx = knoxSqliteTransaction(ds, async (m) => {
      await m.query('UPDATE counter SET n = 7 WHERE id = 1');
      await held;
      throw new Error('rolls back');
    });
    await pause(5);
    const read = knoxSqliteSerial(ds, () => count(ds));
    await pause(5);
    release();
    await expect(tx).rejects.toThrow('rolls back');
    expect(await read).toBe(0);
  });

  it('runs at once when called from inside a unit of work', async () => {
    const ds = await open(tempFile());
    const n = await knoxSqliteTransaction(ds, async (m) => {
      await m.query('UPDATE counter SET n = 3 WHERE id = 1');
      return knoxSqliteSerial(ds, () => count(ds));
    });
    expect(n).toBe(3);
  });
});

describe('better-sqlite3 is an optional peer', () => {
  it('an app without it gets the message that names the package to install', () => {
    const hide = fileURLToPath(
      new URL('../../test/support/hide-better-sqlite3.mjs', import.meta.url),
    );
    const script = `import { DataSource } from 'typeorm';
      try {
        await new DataSource({ type: 'better-sqlite3', database: ':memory:' }).initialize();
        console.log('loaded');
      } catch (e) { console.log(e.message); }`;
    const out = execFileSync(
      process.execPath,
      ['--import', hide, '--input-type=module', '-e', script],
      { encoding: 'utf8' },
    );
    expect(out.trim()).toBe(
      'SQLite package has not been found installed. Please run "npm install better-sqlite3".',
    );
  });
});
