/**
 * Issue 21: the `'poll'` bus fails safe. While the log cannot be read (table dropped,
 * connection cut, connection hung) the cache is bypassed and nothing stale is served; once it
 * reads again the cache starts empty. The log is pruned (rows that commit late are kept), and
 * boot fails, saying what to run, without it.
 */
import {
  afterAll,
  beforeAll,
  beforeEach,
  describe,
  expect,
  it,
} from '@jest/globals';
import pg from 'pg';
import { installKnoxCacheLog } from '../../../lib/store/cache-log/knox-cache-log.migration.js';
import { knoxCacheLogReader } from '../../../lib/store/cache-log/knox-cache-log-reader.js';
import {
  DATABASE_URL,
  EMBEDDED_DB,
  createTestApp,
  login,
  type TestApp,
} from '../../support/test-app.js';
import {
  bearer,
  cacheOf,
  probe,
  refusedWithin,
  until,
  warm,
} from '../../support/cache.js';
import { TcpProxy } from '../../support/tcp-proxy.js';
import {
  TEST_DB,
  TEST_MYSQL_URL,
  describeOn,
  sql,
  type KnoxTestDb,
} from '../../support/test-db.js';

const suite = EMBEDDED_DB ? describe.skip : describe;
/** A server to put a TCP proxy before: PostgreSQL and MySQL/MariaDB (SQLite is a file). */
const onServer = (dbs: KnoxTestDb[], name: string, fn: () => void): void =>
  EMBEDDED_DB ? describe.skip(name, fn) : describeOn(dbs, name, fn);
const SERVER_URL = TEST_DB === 'mariadb' ? TEST_MYSQL_URL : DATABASE_URL;
const poll = { cache: { bus: 'poll' as const } };
const key = (token: string) => token.slice(0, 15);

onServer(['postgres', 'mariadb'], "cache bus 'poll': failing safe", () => {
  let a: TestApp;
  let b: TestApp;
  let proxy: TcpProxy;

  beforeAll(async () => {
    proxy = await TcpProxy.start(SERVER_URL);
    a = await createTestApp({ knox: poll });
    b = await createTestApp({
      knox: poll,
      keepData: true,
      databaseUrl: proxy.url(SERVER_URL),
      dataSourceExtra:
        TEST_DB === 'mariadb'
          ? { connectTimeout: 5000 }
          : { connectionTimeoutMillis: 5000 },
    });
  });
  afterAll(async () => {
    proxy?.release();
    await proxy?.restore().catch(() => undefined);
    await Promise.all([a, b].map((t) => t?.close()));
    await proxy?.close();
  });
  beforeEach(async () => {
    await a.reset();
    await a.createUser('alice');
    await a.createUser('bob');
  });

  it('log table gone: cache bypassed, nothing stale served; back once the log is, empty', async () => {
    const token = await login(a, 'alice');
    const other = await login(a, 'bob');
    await warm(b, token);
    await warm(b, other);
    const bus = cacheOf(b).pollBus!;
    const connects = bus.connects;
    await a.dataSource.query('DROP TABLE knox_cache_log');
    try {
      await until(() => !cacheOf(b).available, 'the poller to be seen down');
      // Without the table the trigger's insert would fail the DELETE: drop it too.
      await a.dataSource.query(
        TEST_DB === 'mariadb'
          ? 'DROP TRIGGER knox_cache_knox_authtoken_log_tdel'
          : 'DROP TRIGGER knox_cache_log_delete ON knox_authtoken',
      );
      await a.dataSource.query(
        sql(`DELETE FROM knox_authtoken WHERE token_key = $1`),
        [key(token)],
      );
      expect(await probe(b, token)).toMatchObject({ status: 401 });
      expect(await probe(b, other)).toEqual({ status: 200, queries: 1 });
      expect(await probe(b, other)).toEqual({ status: 200, queries: 1 });
    } finally {
      // What a migration or a boot with installTriggers puts back.
      const runner = a.dataSource.createQueryRunner();
      await installKnoxCacheLog(runner, 'knox_authtoken');
      await runner.release();
    }
    await until(() => bus.connects > connects, 'the poller to come back');
    expect(cacheOf(b).available).toBe(true);
    expect(cacheOf(b).store!.size).toBe(0);
    expect(await probe(b, other)).toEqual({ status: 200, queries: 1 });
    expect(await probe(b, other)).toEqual({ status: 200, queries: 0 });
    await a.http.post('/auth/logout').set(bearer(other)).expect(204);
    expect(await refusedWithin(b, other)).toBeLessThan(100);
  });

  it('connection cut (TCP proxy): never a stale 200, 503 while down, back without a restart', async () => {
    for (let trial = 0; trial < 3; trial++) {
      const token = await login(a, 'alice');
      await warm(b, token);
      const bus = cacheOf(b).pollBus!;
      const connects = bus.connects;
      await proxy.cut();
      // Deleted while b cannot read the log: b must learn it from the database.
      await a.dataSource.query(
        sql(`DELETE FROM knox_authtoken WHERE token_key = $1`),
        [key(token)],
      );
      await until(
        () => !cacheOf(b).available,
        'the poller to be seen down',
        100,
      );
      expect((await b.http.get('/me').set(bearer(token))).status).toBe(503);
      await proxy.restore();
      await until(() => bus.connects > connects, 'the poller to reconnect');
      expect(await probe(b, token)).toMatchObject({ status: 401 });
    }
  });

  it('connection hung: the cache is bypassed within two intervals, and nothing stale is served', async () => {
    const token = await login(a, 'alice');
    await warm(b, token);
    proxy.hold();
    const held = performance.now();
    try {
      await a.dataSource.query(
        sql(`DELETE FROM knox_authtoken WHERE token_key = $1`),
        [key(token)],
      );
      await until(() => !cacheOf(b).available, 'the cache to be bypassed', 150);
      expect(performance.now() - held).toBeLessThan(150);
      // A request now needs the database (hung): it is not answered from the cache.
      let answered = false;
      const pending = b.http
        .get('/me')
        .set(bearer(token))
        .then((res) => {
          answered = true;
          return res.status;
        });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(answered).toBe(false);
      proxy.release();
      expect(await pending).not.toBe(200);
    } finally {
      proxy.release();
    }
    await until(() => cacheOf(b).available, 'the poller to be back');
    expect((await probe(b, token)).status).toBe(401);
  });
});

onServer(
  ['postgres'],
  "cache bus 'poll': pruning on PostgreSQL (MySQL/MariaDB and SQLite: poll-dialects)",
  () => {
    let t: TestApp;

    beforeAll(async () => {
      t = await createTestApp({ knox: poll });
    });
    afterAll(() => t?.close());

    const count = async (where = 'true') =>
      (
        (await t.dataSource.query(
          `SELECT count(*)::int AS n FROM knox_cache_log WHERE ${where}`,
        )) as { n: number }[]
      )[0].n;

    it('deletes old rows, keeps recent ones and those of a transaction that committed late', async () => {
      await t.dataSource.query(
        `INSERT INTO knox_cache_log (message, created_at)
         SELECT 't:old' || g, now() - interval '1 hour' FROM generate_series(1, 1000) g`,
      );
      await t.dataSource.query(
        `INSERT INTO knox_cache_log (message) VALUES ('t:recent')`,
      );
      const late = new pg.Client({ connectionString: DATABASE_URL });
      await late.connect();
      await late.query('BEGIN');
      await late.query(
        `INSERT INTO knox_cache_log (message, created_at) VALUES ('t:late', now() - interval '1 hour')`,
      );
      const reader = knoxCacheLogReader(t.dataSource, 'knox_authtoken');
      await reader.open();
      try {
        // The first prune only notes the horizon; the next deletes what was done before it.
        expect(await reader.prune(60_000)).toBe(0);
        await late.query('COMMIT');
        expect(await reader.prune(60_000)).toBeGreaterThanOrEqual(1000);
        expect(await count(`message LIKE 't:old%'`)).toBe(0);
        expect(await count(`message = 't:recent'`)).toBe(1);
        // Committed after the first prune began: kept one more round.
        expect(await count(`message = 't:late'`)).toBe(1);
        await reader.prune(60_000);
        expect(await count(`message = 't:late'`)).toBe(0);
      } finally {
        await reader.close();
        await late.end();
      }
    });
  },
);

suite("cache bus 'poll': the boot check", () => {
  it('refuses to boot without the log, saying what to run', async () => {
    await expect(
      createTestApp({
        knox: { cache: { bus: 'poll', installTriggers: false } },
        extras: { tableName: 'knox_poll_unlogged' },
      }),
    ).rejects.toThrow(
      /the cache's invalidation log \(table knox_cache_log and its triggers on knox_poll_unlogged\) is missing, which the 'poll' bus reads: add knoxCacheMigrations\(\{ tableName \}\) to your migrations and run them/,
    );
  });
});
