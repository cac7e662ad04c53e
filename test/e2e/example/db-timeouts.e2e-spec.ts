import { afterAll, beforeAll, expect, it, jest } from '@jest/globals';
import pg from 'pg';
import supertest from 'supertest';
import { DataSource } from 'typeorm';
import type { RunningExample } from '../../../example/src/bootstrap.js';
import { DATABASE_TIMEOUTS } from '../../../example/src/database.js';
import { MESSAGES } from '../../support/http.js';
import { TcpProxy } from '../../support/tcp-proxy.js';
import { DATABASE_URL, EMBEDDED_DB } from '../../support/test-app.js';
import { TEST_DB, describeOn } from '../../support/test-db.js';
import { exampleDatabase } from './example-db.js';

/**
 * The example app (booted as `npm start` boots it, with its own pool settings) talks to the
 * run's database server (PostgreSQL or MariaDB) through a TCP proxy that the test pauses, turns
 * into a black hole, and resumes: a stalled database answers 503 within the example's timeouts
 * instead of hanging the request. SQLite has no server (its locked file: databases/sqlite-outage).
 */

const db = exampleDatabase('knox_example_timeouts');
const SCHEMA = db.schema;
// The example reads DATABASE_URL when its modules load (its user entity's column types).
const DIRECT_URL = DATABASE_URL;
process.env.DATABASE_URL = db.url;
const { DEMO_PASSWORD, DEMO_USERNAME, startExample } =
  await import('../../../example/src/bootstrap.js');
const UNAVAILABLE = {
  statusCode: 503,
  message: MESSAGES.UNAVAILABLE,
  error: 'Service Unavailable',
};
/** Scheduling slack on a loaded 2-core machine, on top of the timeout that should fire. */
const SLACK_MS = 3000;

async function direct<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: DIRECT_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Polls `condition` every 50 ms for at most `ms`. */
async function until(
  condition: () => Promise<boolean>,
  label: string,
  ms = 15_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${label}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describeOn(
  ['postgres', 'mariadb'],
  'example app: database timeouts (DATABASE_TIMEOUTS)',
  () => {
    let proxy: TcpProxy;
    let example: RunningExample;
    let token: string;

    /** GET /me with the demo user's token; the status, body and how long it took. */
    const me = async () => {
      const started = Date.now();
      const res = await supertest(example.url)
        .get('/me')
        .set('Authorization', `Token ${token}`);
      return { status: res.status, body: res.body, ms: Date.now() - started };
    };
    const login = async () => {
      const started = Date.now();
      const res = await supertest(example.url)
        .post('/auth/login')
        .auth(DEMO_USERNAME, DEMO_PASSWORD);
      return { status: res.status, body: res.body, ms: Date.now() - started };
    };
    const recovered = () =>
      until(async () => (await me()).status === 200, 'the example to answer');

    beforeAll(async () => {
      await db.create();
      proxy = await TcpProxy.start(db.url);
      example = await startExample({
        port: 0,
        databaseUrl: proxy.url(db.url),
        dataDir: '/nonexistent',
        schema: SCHEMA,
        banner: false,
      });
      // The outage is expected: keep its error lines out of the test output.
      example.app.useLogger(false);
      const res = await login();
      expect(res.status).toBe(200);
      token = res.body.token as string;
    });

    afterAll(async () => {
      await proxy?.restore().catch(() => undefined);
      proxy?.release();
      await example?.stop();
      await proxy?.close();
      await db.drop();
    });

    it('hands its timeouts to the driver', () => {
      const options = example.app.get(DataSource).options as unknown as Record<
        string,
        unknown
      >;
      if (TEST_DB === 'mariadb') {
        // mysql2: the connect timeout, and TypeORM's per-query timeout (no server-side one).
        expect(options).toMatchObject({
          connectTimeout: DATABASE_TIMEOUTS.connectionTimeoutMillis,
          enableQueryTimeout: true,
          maxQueryExecutionTime: DATABASE_TIMEOUTS.query_timeout,
        });
      } else {
        expect(options.extra).toMatchObject(DATABASE_TIMEOUTS);
      }
      // A few seconds each, and the server's cancel comes before the client gives up.
      expect(DATABASE_TIMEOUTS.statement_timeout).toBeLessThan(
        DATABASE_TIMEOUTS.query_timeout,
      );
      expect(DATABASE_TIMEOUTS.query_timeout).toBeLessThanOrEqual(10_000);
      expect(DATABASE_TIMEOUTS.connectionTimeoutMillis).toBeLessThanOrEqual(
        10_000,
      );
    });

    it('a paused connection: requests answer 503 within the query timeout, and work again once it resumes', async () => {
      expect((await me()).status).toBe(200); // a pooled connection is open
      const consoleLines: unknown[][] = [];
      const log = jest
        .spyOn(console, 'log')
        .mockImplementation((...args) => void consoleLines.push(args));
      proxy.hold();
      const answers = await Promise.all([me(), me(), login()]).finally(() =>
        log.mockRestore(),
      );
      // No console line per stalled statement (TypeORM's slow-query log, with the digest).
      expect(consoleLines).toEqual([]);
      for (const answer of answers) {
        expect({ status: answer.status, body: answer.body }).toEqual({
          status: 503,
          body: UNAVAILABLE,
        });
        expect(answer.ms).toBeLessThan(
          DATABASE_TIMEOUTS.query_timeout + SLACK_MS,
        );
      }
      expect(proxy.heldChunks).toBeGreaterThan(0); // the queries did stall in the proxy
      proxy.release();
      await recovered();
      expect((await login()).status).toBe(200);
    });

    it('a database that accepts connections but never answers: 503 within the connection timeout', async () => {
      await proxy.cut(); // drops the pooled connections
      await proxy.blackhole(); // new ones are accepted and never answered
      const answers = await Promise.all([me(), login()]);
      for (const answer of answers) {
        expect({ status: answer.status, body: answer.body }).toEqual({
          status: 503,
          body: UNAVAILABLE,
        });
        expect(answer.ms).toBeLessThan(
          DATABASE_TIMEOUTS.connectionTimeoutMillis + SLACK_MS,
        );
      }
      await proxy.restore();
      await recovered();
    });

    // Needs a second session holding a lock while the app's waits, and server-side
    // statement_timeout (pg's, sent when a connection opens): PGlite has neither, and the example
    // sets no server-side timeout on MySQL (mysql2 sends no session variables). Real PostgreSQL only.
    (EMBEDDED_DB || TEST_DB !== 'postgres' ? it.skip : it)(
      'a statement stuck behind a lock: the server cancels it after statement_timeout (503), and nothing is left waiting',
      async () => {
        const statementTimeout = await example.app
          .get(DataSource)
          .query('SHOW statement_timeout');
        expect(statementTimeout).toEqual([
          {
            statement_timeout: `${DATABASE_TIMEOUTS.statement_timeout / 1000}s`,
          },
        ]);
        await direct(async (locker) => {
          await locker.query('BEGIN');
          await locker.query(
            `LOCK TABLE ${SCHEMA}.knox_authtoken IN ACCESS EXCLUSIVE MODE`,
          );
          try {
            const answer = await me();
            expect({ status: answer.status, body: answer.body }).toEqual({
              status: 503,
              body: UNAVAILABLE,
            });
            expect(answer.ms).toBeLessThan(
              DATABASE_TIMEOUTS.statement_timeout + SLACK_MS,
            );
            // The server cancelled the statement: no backend still waits on the lock (a
            // client-side query_timeout alone would answer 503 and leave it waiting there).
            const { rows } = await locker.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'
                AND pid <> pg_backend_pid()`,
            );
            expect(rows[0].n).toBe(0);
          } finally {
            await locker.query('ROLLBACK');
          }
        });
        const after = await me();
        expect(after.status).toBe(200);
        expect(after.body.username).toBe(DEMO_USERNAME);
      },
    );
  },
);
