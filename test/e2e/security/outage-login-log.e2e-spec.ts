/**
 * Issue 23 item 10: during a database outage every failed login logged
 * `ERROR [KnoxController] validateUser failed: read ECONNRESET` with its stack. Such failures are
 * now counted in the token store's outage log: a few summary lines for an outage, no stack per
 * request. The connection is cut for real (a TCP proxy to the run's server; on SQLite, another
 * connection holds the file's exclusive lock); log lines are counted.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { LoggerService } from '@nestjs/common';
import { createRequire } from 'node:module';
import { MESSAGES } from '../../support/http.js';
import { PLATFORMS } from '../../support/platforms.js';
import { TcpProxy } from '../../support/tcp-proxy.js';
import { TestUser } from '../../support/fixtures.js';
import { createTestApp, login, type TestApp } from '../../support/test-app.js';
import { TEST_DB, testServerUrl } from '../../support/test-db.js';

const LOGINS = 40;

/** The connection pool of the app: 4 connections, a connection attempt fails after 5 s. */
const POOL =
  TEST_DB === 'mariadb'
    ? { connectionLimit: 4, connectTimeout: 5000 }
    : { max: 4, connectionTimeoutMillis: 5000 };

interface SqliteConnection {
  exec(sql: string): void;
  close(): void;
}

/**
 * The outage: the TCP proxy between the app and the database server cut (PostgreSQL, MariaDB);
 * on SQLite, which has no server, another connection holding the file's exclusive lock past the
 * app's busy timeout (SQLITE_BUSY).
 */
interface Outage {
  /** The app's connection options. */
  databaseUrl: string | undefined;
  /** Called once the app is up. */
  prepare(t: TestApp): Promise<void>;
  start(): Promise<void>;
  end(): Promise<void>;
  close(): Promise<void>;
}

async function startOutage(): Promise<Outage> {
  const server = testServerUrl();
  if (server === undefined) {
    const Sqlite = createRequire(import.meta.url)('better-sqlite3') as new (
      file: string,
      options?: { timeout?: number },
    ) => SqliteConnection;
    let file = '';
    let other: SqliteConnection | undefined;
    return {
      databaseUrl: undefined,
      prepare: async (t) => {
        // The app's connection gives up on the lock after 50 ms, not 5 s (better-sqlite3 waits
        // synchronously: the logins wait one after the other).
        await t.dataSource.query('PRAGMA busy_timeout = 50');
        file = (t.dataSource.options as { database: string }).database;
      },
      start: async () => {
        other = new Sqlite(file, { timeout: 0 });
        other.exec('BEGIN EXCLUSIVE');
      },
      end: async () => {
        other?.exec('ROLLBACK');
        other?.close();
        other = undefined;
      },
      close: async () => {
        other?.close();
      },
    };
  }
  const proxy = await TcpProxy.start(server);
  return {
    databaseUrl: proxy.url(server),
    prepare: async () => undefined,
    start: () => proxy.cut(),
    end: () => proxy.restore(),
    close: async () => {
      await proxy.restore().catch(() => undefined);
      await proxy.close();
    },
  };
}

interface Line {
  level: string;
  context: string;
  message: string;
  stack: boolean;
}

describe.each(PLATFORMS)('login during a database outage (%s)', (platform) => {
  let t: TestApp;
  let outage: Outage;
  const lines: Line[] = [];

  beforeAll(async () => {
    outage = await startOutage();
    t = await createTestApp({
      platform,
      databaseUrl: outage.databaseUrl,
      dataSourceExtra: TEST_DB === 'sqlite' ? undefined : POOL,
      knox: {
        validateUser: async (username, password) => {
          if (username === 'buggy') {
            throw new TypeError('user.checkPassword is not a function');
          }
          const user = await t.dataSource
            .getRepository(TestUser)
            .findOneBy({ username });
          return user && user.password === password ? user : null;
        },
      },
    });
    const push =
      (level: string) =>
      (message: unknown, ...rest: unknown[]) => {
        const context = String(rest.at(-1) ?? '');
        lines.push({
          level,
          context,
          message: String(message),
          stack: rest.length > 1 && /\n\s+at /.test(String(rest[0])),
        });
      };
    const logger: LoggerService = {
      log: push('log'),
      warn: push('warn'),
      error: push('error'),
      debug: push('debug'),
      verbose: push('verbose'),
    };
    t.app.useLogger(logger);
    await t.createUser('alice');
    await outage.prepare(t);
  });

  afterAll(async () => {
    await outage?.end().catch(() => undefined);
    await t?.close();
    await outage?.close();
  });

  it(`${LOGINS} failed logins write a few summary lines, no stack, no per-login line`, async () => {
    // Pooled connections are open when the cut comes: some logins meet ECONNRESET-like
    // failures, the others ECONNREFUSED (SQLite: SQLITE_BUSY).
    expect(await login(t, 'alice')).toEqual(expect.any(String));
    lines.length = 0;
    await outage.start();
    const answers = [];
    for (let batch = 0; batch < LOGINS / 10; batch++) {
      answers.push(
        ...(await Promise.all(
          Array.from({ length: 10 }, () =>
            t.http
              .post('/auth/login')
              .send({ username: 'alice', password: 'secret-password' }),
          ),
        )),
      );
    }
    for (const res of answers) {
      expect({ status: res.status, message: res.body.message }).toEqual({
        status: 503,
        message: MESSAGES.UNAVAILABLE,
      });
    }
    const errors = lines.filter((l) => l.level === 'error');
    expect(errors.filter((l) => /validateUser failed/.test(l.message))).toEqual(
      [],
    );
    expect(errors.filter((l) => l.stack)).toEqual([]);
    // The outage's first line, at most a summary or two within the test's few seconds.
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(errors.length).toBeLessThanOrEqual(3);
    expect(errors[0]).toMatchObject({
      context: 'KnoxTokenService',
      message: expect.stringMatching(/^Database error: /),
    });
    expect(lines.length).toBeLessThanOrEqual(3);

    // Back: the next login works and one line says the database is back.
    await outage.end();
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (
        await t.http
          .post('/auth/login')
          .send({ username: 'alice', password: 'secret-password' })
      ).status;
      if (status !== 200) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    expect(status).toBe(200);
    expect(
      lines.filter((l) => /^Database is back after /.test(l.message)),
    ).toHaveLength(1);
  });

  it('a bug in validateUser (not an outage) is still logged at once, with its stack', async () => {
    lines.length = 0;
    const res = await t.http
      .post('/auth/login')
      .send({ username: 'buggy', password: 'x' });
    expect(res.status).toBe(503);
    expect(lines).toEqual([
      {
        level: 'error',
        context: 'KnoxController',
        message: 'validateUser failed: user.checkPassword is not a function',
        stack: true,
      },
    ]);
  });
});
