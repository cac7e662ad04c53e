/**
 * The database guarantees nestjs-knox relies on, checked against whatever DATABASE_URL is active
 * (the embedded PGlite by default, a real PostgreSQL when DATABASE_URL is set):
 * row locks and transaction isolation across pool connections, rollback, cleanup of a connection
 * that leaves mid-transaction, and parameterised queries from many connections at once.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../example/src/embedded-postgres.js';

const POOL_SIZE = 10;
const TOKEN_LIMIT = 3;

function databaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url)
    throw new Error(
      'DATABASE_URL is not set: is test/global-setup.ts configured?',
    );
  return url;
}

describe('database isolation (DATABASE_URL)', () => {
  const suffix = randomBytes(4).toString('hex');
  const users = `iso_users_${suffix}`;
  const tokens = `iso_tokens_${suffix}`;
  let pool: pg.Pool;

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: databaseUrl(), max: POOL_SIZE });
    await pool.query(
      `CREATE TABLE ${users} (id integer PRIMARY KEY, name text NOT NULL)`,
    );
    await pool.query(
      `CREATE TABLE ${tokens} (
         id serial PRIMARY KEY,
         user_id integer NOT NULL REFERENCES ${users} (id),
         label text NOT NULL
       )`,
    );
    await pool.query(
      `INSERT INTO ${users} (id, name) VALUES (1, 'alice'), (2, 'bob'), (3, 'carol')`,
    );
  });

  afterAll(async () => {
    if (!pool) return;
    await pool.query(`DROP TABLE IF EXISTS ${tokens}`);
    await pool.query(`DROP TABLE IF EXISTS ${users}`);
    await pool.end();
  });

  /** One "login": lock the user row, count its tokens, insert one if under the limit. */
  async function login(userId: number, label: string): Promise<boolean> {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const locked = await client.query(
        `SELECT id FROM ${users} WHERE id = $1 FOR UPDATE`,
        [userId],
      );
      expect(locked.rowCount).toBe(1);
      const { rows } = await client.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${tokens} WHERE user_id = $1`,
        [userId],
      );
      // Widen the race window: without the row lock concurrent logins see the same count
      // (on PostgreSQL 15 without FOR UPDATE this ends with ~12 rows instead of 3).
      await new Promise((resolve) => setTimeout(resolve, 20));
      let inserted = false;
      if (rows[0].n < TOKEN_LIMIT) {
        await client.query(
          `INSERT INTO ${tokens} (user_id, label) VALUES ($1, $2)`,
          [userId, label],
        );
        inserted = true;
      }
      await client.query('COMMIT');
      return inserted;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async function tokenCount(userId: number): Promise<number> {
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${tokens} WHERE user_id = $1`,
      [userId],
    );
    return rows[0].n;
  }

  it('20 concurrent logins with SELECT ... FOR UPDATE leave exactly the token limit', async () => {
    // Open every pool connection first, so the 20 logins really overlap.
    const warm = await Promise.all(
      Array.from({ length: POOL_SIZE }, () => pool.connect()),
    );
    for (const client of warm) client.release();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => login(1, `device-${i}`)),
    );
    expect(results.filter(Boolean)).toHaveLength(TOKEN_LIMIT);
    expect(await tokenCount(1)).toBe(TOKEN_LIMIT);
  });

  it('an error and ROLLBACK in one transaction leave concurrent ones intact', async () => {
    async function failing(): Promise<string> {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(
          `INSERT INTO ${tokens} (user_id, label) VALUES ($1, $2)`,
          [2, 'doomed'],
        );
        await expect(client.query('SELECT 1 / $1::int', [0])).rejects.toThrow(
          /division by zero/,
        );
        // The transaction is aborted now; even valid statements fail until ROLLBACK.
        await expect(client.query('SELECT 1')).rejects.toThrow(/aborted/);
        await client.query('ROLLBACK');
        const after = await client.query<{ ok: number }>('SELECT 1 AS ok');
        return after.rows[0].ok === 1 ? 'rolled back' : 'broken';
      } finally {
        client.release();
      }
    }
    async function succeeding(i: number): Promise<string> {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(
          `INSERT INTO ${tokens} (user_id, label) VALUES ($1, $2)`,
          [2, `kept-${i}`],
        );
        await client.query('COMMIT');
        return 'committed';
      } finally {
        client.release();
      }
    }

    const outcomes = await Promise.all([
      succeeding(0),
      failing(),
      succeeding(1),
      failing(),
      succeeding(2),
      succeeding(3),
    ]);
    expect(outcomes.filter((o) => o === 'rolled back')).toHaveLength(2);
    expect(outcomes.filter((o) => o === 'committed')).toHaveLength(4);

    const { rows } = await pool.query<{ label: string }>(
      `SELECT label FROM ${tokens} WHERE user_id = 2 ORDER BY label`,
    );
    expect(rows.map((r) => r.label)).toEqual([
      'kept-0',
      'kept-1',
      'kept-2',
      'kept-3',
    ]);
    // Every pooled connection is still usable and outside any transaction.
    const clients = await Promise.all(
      Array.from({ length: POOL_SIZE }, () => pool.connect()),
    );
    try {
      for (const client of clients) {
        // Outside a transaction block every statement starts its own transaction.
        const { rows: status } = await client.query<{ own: boolean }>(
          'SELECT now() = statement_timestamp() AS own',
        );
        expect(status[0].own).toBe(true);
      }
    } finally {
      for (const client of clients) client.release();
    }
  });

  it('a connection closed mid-transaction is rolled back and does not block others', async () => {
    const leaver = new pg.Client({ connectionString: databaseUrl() });
    await leaver.connect();
    await leaver.query('BEGIN');
    await leaver.query(`SELECT id FROM ${users} WHERE id = $1 FOR UPDATE`, [3]);
    await leaver.query(
      `INSERT INTO ${tokens} (user_id, label) VALUES ($1, $2)`,
      [3, 'uncommitted'],
    );
    await leaver.end(); // no COMMIT

    expect(await login(3, 'after-leaver')).toBe(true);
    const { rows } = await pool.query<{ label: string }>(
      `SELECT label FROM ${tokens} WHERE user_id = 3`,
    );
    expect(rows.map((r) => r.label)).toEqual(['after-leaver']);
  });

  it('parameterised queries from many connections never mix (extended protocol)', async () => {
    // Large parameters arrive in several TCP chunks; stock pglite-socket 0.2.17 let another
    // connection's Parse run between them ("bind message supplies 2 parameters ...").
    const big = 'x'.repeat(300_000);
    const results = await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        if (i % 2 === 1) {
          const { rows } = await pool.query<{ a: number; len: number }>(
            'SELECT $1::int AS a, length($2::text) AS len',
            [i, big],
          );
          return rows[0].a === i && rows[0].len === big.length;
        }
        const { rows } = await pool.query<{ b: string; kind: string }>(
          `SELECT $1::text AS b, 'even' AS kind`,
          [String(i)],
        );
        return rows[0].b === String(i) && rows[0].kind === 'even';
      }),
    );
    expect(results.every(Boolean)).toBe(true);
  });
});

describe('startEmbeddedPostgres', () => {
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'knox-pglite-'));
  });

  afterAll(async () => {
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('creates a missing dataDir with its parents, and persists data there across a restart', async () => {
    // As `npm start` in a fresh clone: `.data/pglite` where `.data/` does not exist yet.
    const nested = join(dataDir, 'missing', 'parents', 'pglite');
    const first = await startEmbeddedPostgres({ dataDir: nested });
    try {
      const client = new pg.Client({ connectionString: first.url });
      await client.connect();
      await client.query('CREATE TABLE kept (v text)');
      await client.query('INSERT INTO kept (v) VALUES ($1)', ['survives']);
      await client.end();
    } finally {
      await first.stop();
    }

    const second = await startEmbeddedPostgres({ dataDir: nested });
    try {
      const client = new pg.Client({ connectionString: second.url });
      await client.connect();
      const { rows } = await client.query<{ v: string }>('SELECT v FROM kept');
      await client.end();
      expect(rows).toEqual([{ v: 'survives' }]);
    } finally {
      await second.stop();
    }
  }, 60_000); // two PGlite starts: 2-5 s each, more on a busy machine

  it('rejects a maxConnections that could not serve a pool', async () => {
    await expect(startEmbeddedPostgres({ maxConnections: 0 })).rejects.toThrow(
      /maxConnections/,
    );
  });
});
