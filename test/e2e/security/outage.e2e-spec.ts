import {
  afterAll,
  afterEach,
  beforeAll,
  beforeEach,
  describe,
  expect,
  it,
} from '@jest/globals';
import { DataSource } from 'typeorm';
import { KnoxEvents } from '../../../lib/index.js';
import { PLATFORMS } from '../../support/platforms.js';
import {
  createTestApp,
  login,
  useTestApp,
  type TestApp,
} from '../../support/test-app.js';
import { MESSAGES } from '../../support/http.js';
import { TcpProxy } from '../../support/tcp-proxy.js';
import {
  TEST_DB,
  describeOn,
  testConnectionOptions,
  testServerUrl,
} from '../../support/test-db.js';

/**
 * The database connection is cut for real: the app talks to the run's database server
 * (PostgreSQL or MariaDB) through a TCP proxy that the test holds, cuts, turns into a black hole
 * and restores. SQLite has no server: its outage, a file locked by another connection, is
 * test/e2e/databases/sqlite-outage.e2e-spec.ts; the failures of the last describe hold on every
 * database.
 */

const UNAVAILABLE = {
  statusCode: 503,
  message: MESSAGES.UNAVAILABLE,
  error: 'Service Unavailable',
};
const POOL_SIZE = 10;

/** The server the proxy fronts (undefined on SQLite, where the proxied describes are skipped). */
const SERVER_URL = testServerUrl() ?? '';

/**
 * The pool's settings in the driver's words: `size` connections kept open (none closed for
 * idling), a connection attempt that gets no answer fails after `connectMs`.
 */
function poolOptions(size: number, connectMs: number): Record<string, unknown> {
  return TEST_DB === 'mariadb'
    ? { connectionLimit: size, maxIdle: size, connectTimeout: connectMs }
    : { max: size, connectionTimeoutMillis: connectMs, idleTimeoutMillis: 0 };
}

/** A statement that holds its connection for 50 ms. */
const SLEEP_SQL =
  TEST_DB === 'mariadb' ? 'SELECT SLEEP(0.05)' : 'SELECT pg_sleep(0.05)';

/** Polls `condition` every 20 ms for at most `ms`. */
async function until(
  condition: () => boolean | Promise<boolean>,
  label: string,
  ms = 10_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${label}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Runs `text` straight on the server (not through the proxy), on a connection of its own. */
async function queryDirect(text: string): Promise<Record<string, unknown>[]> {
  const direct = new DataSource(
    testConnectionOptions() as ConstructorParameters<typeof DataSource>[0],
  );
  await direct.initialize();
  try {
    return await direct.query(text);
  } finally {
    await direct.destroy();
  }
}

/** The token rows, read straight from the server. */
const rowsDirect = () =>
  queryDirect(
    'SELECT digest, token_key, user_id, created, expiry, name, last_used_at FROM knox_authtoken ORDER BY digest',
  );

/**
 * Boots and closes an app straight on the server, before an app connects with a 1 s connect
 * timeout: the first boot of a platform in a test file loads its modules while its connections
 * are being made, and on a busy machine mysql2's connect timer can fire before the handshake is
 * read (connect ETIMEDOUT at boot).
 */
const warmUp = async (platform?: 'express' | 'fastify') =>
  (await createTestApp({ platform })).close();

interface Seen {
  status: number;
  body: unknown;
  www: string | undefined;
  ms: number;
}

describeOn(['postgres', 'mariadb'], 'database outage', () => {
  describe.each(PLATFORMS)('database outage (%s)', (platform) => {
    // Booted by hand, not with useTestApp: one app behind a TCP proxy goes through a sequence
    // of outages and recoveries, each test starting from the state the previous one left.
    let t: TestApp;
    let proxy: TcpProxy;
    const tokens: Record<string, string> = {};
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);

    /** Starts a request now; resolves to what the client saw (and how long it took). */
    const send = (
      request: PromiseLike<{
        status: number;
        body: unknown;
        headers: Record<string, string>;
      }>,
    ): Promise<Seen> => {
      const started = Date.now();
      return Promise.resolve(request).then((res) => ({
        status: res.status,
        body: res.body,
        www: res.headers['www-authenticate'],
        ms: Date.now() - started,
      }));
    };
    const me = (token: string) =>
      send(t.http.get('/me').set('Authorization', `Token ${token}`));
    const loginAs = (username: string) =>
      send(
        t.http
          .post('/auth/login')
          .send({ username, password: 'secret-password', name: 'laptop' }),
      );
    const post = (path: string, token: string) =>
      send(t.http.post(path).set('Authorization', `Token ${token}`));

    /** Opens every pooled connection, so that requests in flight already hold one. */
    const warmPool = () =>
      Promise.all(
        Array.from({ length: POOL_SIZE }, () => t.dataSource.query(SLEEP_SQL)),
      );

    const recover = async () => {
      await proxy.restore();
      await until(
        async () => (await me(tokens.alice1)).status === 200,
        'the app to reconnect',
      );
    };

    beforeAll(async () => {
      process.on('unhandledRejection', onUnhandled);
      await warmUp(platform);
      proxy = await TcpProxy.start(SERVER_URL);
      t = await createTestApp({
        platform,
        databaseUrl: proxy.url(SERVER_URL),
        // What SECURITY.md recommends: fail a connection attempt fast instead of waiting on
        // the OS, and keep the pool's idle connections (the test wants them open).
        dataSourceExtra: poolOptions(POOL_SIZE, 1000),
      });
      await t.createUser('alice');
      await t.createUser('bob');
      for (const key of ['alice1', 'alice2', 'alice3']) {
        tokens[key] = await login(t, 'alice');
      }
      for (const key of ['bob1', 'bob2']) {
        tokens[key] = await login(t, 'bob');
      }
    });

    afterAll(async () => {
      await proxy?.restore().catch(() => undefined);
      await t?.close();
      await proxy?.close();
      process.off('unhandledRejection', onUnhandled);
    });

    it('requests in flight when the connection is cut answer 503 with a clear message; nothing is written, nobody is logged out', async () => {
      const before = await rowsDirect();
      expect(before).toHaveLength(5);
      await warmPool();
      t.events.length = 0;
      proxy.hold();
      const inFlight = [
        me(tokens.alice1),
        me(tokens.alice2),
        me(tokens.bob1),
        loginAs('alice'),
        loginAs('bob'),
        post('/auth/logout', tokens.alice3),
        post('/auth/logoutall', tokens.bob2),
        send(
          t.http
            .get('/auth/tokens')
            .set('Authorization', `Token ${tokens.alice1}`),
        ),
      ];
      // Every request has sent its first query, which the proxy holds back; alice1's two
      // requests share one lookup (concurrent lookups of one token are a single flight).
      await until(
        () => proxy.heldChunks >= inFlight.length - 1,
        'the queries in flight',
      );
      await proxy.cut();
      const answers = await Promise.all(inFlight);
      for (const answer of answers) {
        expect({ status: answer.status, body: answer.body }).toEqual({
          status: 503,
          body: UNAVAILABLE,
        });
        // A 503 is not a 401: clients keep their tokens and retry.
        expect(answer.www).toBeUndefined();
      }
      expect(t.events).toEqual([]);
      // Read straight from the server while the app is still cut off.
      expect(await rowsDirect()).toEqual(before);
    });

    it('while the database is unreachable, guarded routes and login answer 503 at once', async () => {
      const answers = await Promise.all([
        me(tokens.alice1),
        loginAs('bob'),
        post('/auth/logout', tokens.alice2),
      ]);
      for (const answer of answers) {
        expect(answer.status).toBe(503);
        expect(answer.body).toEqual(UNAVAILABLE);
        expect(answer.ms).toBeLessThan(3000);
      }
    });

    it('when connections hang (a black hole), connectionTimeoutMillis turns them into 503 instead of a hung request', async () => {
      await proxy.blackhole();
      const answers = await Promise.all([me(tokens.bob1), loginAs('alice')]);
      for (const answer of answers) {
        expect(answer.status).toBe(503);
        expect(answer.body).toEqual(UNAVAILABLE);
        expect(answer.ms).toBeLessThan(5000);
      }
    });

    it('recovers by itself when the connection returns: every token still works, no row was lost or added', async () => {
      const before = await rowsDirect();
      await recover();
      for (const token of Object.values(tokens)) {
        const res = await me(token);
        expect(res.status).toBe(200);
      }
      const after = await rowsDirect();
      expect(after.map((r) => r.digest)).toEqual(before.map((r) => r.digest));
      const fresh = await loginAs('alice');
      expect(fresh.status).toBe(200);
      expect(await rowsDirect()).toHaveLength(before.length + 1);
      expect(unhandled).toEqual([]);
    });

    it('a login cut between its INSERT and its COMMIT leaves no half-written token', async () => {
      await warmPool();
      const before = await rowsDirect();
      t.events.length = 0;
      t.recorder.reset();
      // The COMMIT statement itself (not `SET TRANSACTION ISOLATION LEVEL READ COMMITTED`).
      proxy.holdFromFirst((chunk) =>
        /\bCOMMIT\b/.test(chunk.toString('latin1')),
      );
      const pending = loginAs('bob');
      await until(() => proxy.heldChunks >= 1, 'the COMMIT');
      // The INSERT did reach the server, inside the transaction.
      expect(
        t.recorder.writes.some((sql) =>
          /^INSERT INTO ["`]knox_authtoken["`]/.test(sql),
        ),
      ).toBe(true);
      await proxy.cut();
      const answer = await pending;
      expect(answer.status).toBe(503);
      expect(answer.body).toEqual(UNAVAILABLE);
      expect(t.events.filter((e) => e.name === 'knox.login')).toEqual([]);
      expect(await rowsDirect()).toEqual(before);
      await recover();
      expect(await rowsDirect()).toEqual(before);
      expect(unhandled).toEqual([]);
    });
  });
});

describeOn(
  ['postgres', 'mariadb'],
  'a silent network (packets dropped on open connections)',
  () => {
    // Booted by hand, not with useTestApp: the app talks to the server through a TCP proxy.
    let t: TestApp;
    let proxy: TcpProxy;
    let token: string;
    beforeAll(async () => {
      proxy = await TcpProxy.start(SERVER_URL);
      t = await createTestApp({
        databaseUrl: proxy.url(SERVER_URL),
        // The client's query timeout: pg's query_timeout; on MySQL, TypeORM's (mysql2's per-query
        // timeout, which it sets only with enableQueryTimeout).
        dataSourceExtra:
          TEST_DB === 'mariadb'
            ? poolOptions(4, 1000)
            : { ...poolOptions(4, 1000), query_timeout: 1000 },
        dataSourceOptions:
          TEST_DB === 'mariadb'
            ? { enableQueryTimeout: true, maxQueryExecutionTime: 1000 }
            : undefined,
      });
      await t.createUser('alice');
      token = await login(t, 'alice');
    });
    afterAll(async () => {
      await t?.close();
      await proxy?.close();
    });

    it('query_timeout answers 503 instead of hanging, and the app recovers when packets flow again', async () => {
      const before = await rowsDirect();
      proxy.hold();
      const started = Date.now();
      const [guarded, loggedIn] = await Promise.all([
        t.http.get('/me').set('Authorization', `Token ${token}`),
        t.http
          .post('/auth/login')
          .send({ username: 'alice', password: 'secret-password' }),
      ]);
      expect(Date.now() - started).toBeLessThan(5000);
      for (const res of [guarded, loggedIn]) {
        expect(res.status).toBe(503);
        expect(res.body).toEqual(UNAVAILABLE);
      }
      proxy.release();
      await until(
        async () =>
          (await t.http.get('/me').set('Authorization', `Token ${token}`))
            .status === 200,
        'the app to answer again',
      );
      expect((await rowsDirect()).map((r) => r.digest)).toEqual(
        before.map((r) => r.digest),
      );
    });
  },
);

describe.each(PLATFORMS)(
  'a database failure while authenticating (%s)',
  (platform) => {
    const t = useTestApp({ platform }, async (app) => {
      await app.createUser('alice');
      return { token: await login(app, 'alice') };
    });
    let token: string;
    beforeEach(() => {
      token = t.seeded.token;
    });
    // Runs before useTestApp's afterAll closes the app: puts the table back if a test left it renamed.
    afterEach(async () => {
      await t.dataSource
        .query('ALTER TABLE knox_authtoken_gone RENAME TO knox_authtoken')
        .catch(() => undefined);
    });

    const expectUnavailable = (res: {
      status: number;
      body: unknown;
      headers: Record<string, unknown>;
    }) => {
      expect({ status: res.status, body: res.body }).toEqual({
        status: 503,
        body: {
          statusCode: 503,
          message: MESSAGES.UNAVAILABLE,
          error: 'Service Unavailable',
        },
      });
      // Not a 401: the client must not take it as "logged out".
      expect(res.headers['www-authenticate']).toBeUndefined();
    };

    it('a failing query is 503, not 401, and the token survives it', async () => {
      await t.dataSource.query(
        'ALTER TABLE knox_authtoken RENAME TO knox_authtoken_gone',
      );
      try {
        const res = await t.http
          .get('/me')
          .set('Authorization', `Token ${token}`);
        expectUnavailable(res);
        const out = await t.http
          .post('/auth/logout')
          .set('Authorization', `Token ${token}`);
        expectUnavailable(out);
      } finally {
        await t.dataSource.query(
          'ALTER TABLE knox_authtoken_gone RENAME TO knox_authtoken',
        );
      }
      expect(await t.tokenRows()).toHaveLength(1);
      const res = await t.http
        .get('/me')
        .set('Authorization', `Token ${token}`);
      expect(res.status).toBe(200);
    });

    it('a closed connection pool is 503 for requests and logins, and the row survives', async () => {
      await t.dataSource.destroy();
      try {
        expectUnavailable(
          await t.http.get('/me').set('Authorization', `Token ${token}`),
        );
        const login = await t.http
          .post('/auth/login')
          .send({ username: 'alice', password: 'secret-password' });
        expect(login.status).toBe(503);
        expect(t.events.some((e) => e.name === KnoxEvents.TOKEN_EXPIRED)).toBe(
          false,
        );
      } finally {
        await t.dataSource.initialize();
      }
      expect(await t.tokenRows()).toHaveLength(1);
      expect(
        (await t.http.get('/me').set('Authorization', `Token ${token}`)).status,
      ).toBe(200);
    });
  },
);
