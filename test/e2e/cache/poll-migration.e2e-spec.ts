/**
 * Issue 21: `KnoxCacheLog9000000000008` creates `knox_cache_log` and the triggers that append
 * to it, on a database of its own: each writer leaves the message a `NOTIFY` would carry; `down`
 * removes the triggers and the table.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { knoxCacheMigrations, knoxTokenEntity } from '../../../lib/index.js';
import { hasKnoxCacheLog } from '../../../lib/store/cache-log/knox-cache-log.migration.js';
import { TestUser } from '../../support/fixtures.js';
import { DATABASE_URL, EMBEDDED_DB } from '../../support/test-app.js';
import { TEST_DB } from '../../support/test-db.js';

// PostgreSQL's log DDL (statement triggers packing many rows, TRUNCATE, pg_trigger), on a
// database of its own on the server: on the MariaDB and SQLite runs DATABASE_URL is no database
// of the run. The log's DDL and reader there: poll-dialects; the migration list there:
// migrations-portable.
const suite = EMBEDDED_DB || TEST_DB !== 'postgres' ? describe.skip : describe;

suite('cache log migration (PostgreSQL)', () => {
  const url = new URL(DATABASE_URL);
  const database = `${url.pathname.slice(1)}_poll_mig`;
  url.pathname = `/${database}`;
  let dataSource: DataSource;

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${database}"`);
    await admin.end();
    dataSource = await new DataSource({
      type: 'postgres',
      url: url.toString(),
      entities: [TestUser, knoxTokenEntity(TestUser)],
      synchronize: true,
      migrations: knoxCacheMigrations(),
    }).initialize();
  });
  afterAll(() => dataSource?.destroy());

  /** The messages appended since the last call. */
  let seen = 0;
  async function appended(): Promise<string[]> {
    const rows = (await dataSource.query(
      `SELECT id::int AS id, message FROM knox_cache_log WHERE id > $1 ORDER BY id`,
      [seen],
    )) as { id: number; message: string }[];
    seen = rows.at(-1)?.id ?? seen;
    return rows.map((r) => r.message);
  }

  const insertToken = (digest: string, userId: number) =>
    dataSource.query(
      `INSERT INTO knox_authtoken (digest, token_key, user_id, created, expiry) VALUES ($1::varchar, left($1::varchar, 15), $2, now(), now() + interval '1 hour')`,
      [digest, userId],
    );

  it('appends what each writer changed, and nothing for what does not matter', async () => {
    const runner = dataSource.createQueryRunner();
    expect(await hasKnoxCacheLog(runner, 'knox_authtoken')).toBe(false);
    const ran = await dataSource.runMigrations();
    expect(ran.map((m) => m.name)).toContain('KnoxCacheLog9000000000008');
    expect(await hasKnoxCacheLog(runner, 'knox_authtoken')).toBe(true);
    await runner.release();

    const [{ id }] = (await dataSource.query(
      `INSERT INTO knox_test_user (username, password) VALUES ('alice', 'x') RETURNING id`,
    )) as { id: number }[];
    const digests = Array.from(
      { length: 100 },
      (_, i) => `${String(i).padStart(3, '0')}${'a'.repeat(125)}`,
    );
    for (const digest of digests) {
      await insertToken(digest, id);
    }
    expect(await appended()).toEqual([]);

    await dataSource.query(
      `UPDATE knox_authtoken SET last_used_at = now(), expiry = expiry + interval '1 hour' WHERE digest = $1`,
      [digests[0]],
    );
    expect(await appended()).toEqual([]);
    await dataSource.query(
      `UPDATE knox_authtoken SET expiry = now() WHERE digest = $1`,
      [digests[1]],
    );
    await dataSource.query(
      `UPDATE knox_authtoken SET abilities = '{}' WHERE digest = $1`,
      [digests[2]],
    );
    await dataSource.query(
      `UPDATE knox_authtoken SET abilities = abilities WHERE digest = $1`,
      [digests[2]],
    );
    expect(await appended()).toEqual([`t:${digests[1]}`, `t:${digests[2]}`]);

    // One DELETE of 99 rows: packed into two rows of the log.
    await dataSource.query(`DELETE FROM knox_authtoken WHERE digest <> $1`, [
      digests[0],
    ]);
    const deleted = await appended();
    expect(deleted.length).toBe(2);
    expect(deleted.flatMap((m) => m.slice(2).split(',')).sort()).toEqual(
      digests.slice(1).sort(),
    );

    await dataSource.query(
      `UPDATE knox_test_user SET "isActive" = false WHERE id = $1`,
      [id],
    );
    await dataSource.query(
      `UPDATE knox_test_user SET "isActive" = false WHERE id = $1`,
      [id],
    );
    expect(await appended()).toEqual([`u:${id}`]);

    await dataSource.query(`DELETE FROM knox_test_user WHERE id = $1`, [id]);
    expect((await appended()).sort()).toEqual(
      [`t:${digests[0]}`, `u:${id}`].sort(),
    );

    await dataSource.query(`TRUNCATE knox_authtoken`);
    expect(await appended()).toEqual(['f']);
  });

  it('down removes the triggers and the table', async () => {
    const runner = dataSource.createQueryRunner();
    await dataSource.undoLastMigration();
    expect(await hasKnoxCacheLog(runner, 'knox_authtoken')).toBe(false);
    const [{ n }] = (await dataSource.query(
      `SELECT count(*)::int AS n FROM pg_trigger WHERE tgname LIKE 'knox_cache%log%'`,
    )) as { n: number }[];
    expect(n).toBe(0);
    expect(
      await dataSource.query(`SELECT to_regclass('knox_cache_log') AS t`),
    ).toEqual([{ t: null }]);
    // Deletes still work without the log.
    await dataSource.query(`DELETE FROM knox_authtoken`);
    await runner.release();
  });
});
