/**
 * Issue 21: `cache: { bus: 'poll' }` on PostgreSQL, MySQL/MariaDB and SQLite (the default bus on
 * the last two). Several instances on one real database; the triggers append to
 * `knox_cache_log`, each instance reads it every `pollInterval` ms. Every
 * writer (another instance, SQL, a user change) is refused everywhere within 100 ms; a
 * transaction that commits after later ones (a lower id, committed late) is not skipped; while
 * the log cannot be read the cache is bypassed, and it comes back empty.
 */
import {
  afterAll,
  beforeAll,
  beforeEach,
  describe,
  expect,
  it,
} from '@jest/globals';
import { Controller, Get, UseGuards } from '@nestjs/common';
import { createRequire } from 'node:module';
import pg from 'pg';
import { KnoxAbilities, KnoxGuard } from '../../../lib/index.js';
import {
  DATABASE_URL,
  EMBEDDED_DB,
  createTestApp,
  login,
  type TestApp,
} from '../../support/test-app.js';
import {
  abilitiesParam,
  bearer,
  cacheOf,
  dateParam,
  probe,
  refusedWithin,
  warm,
} from '../../support/cache.js';
import {
  TEST_DB,
  TEST_MYSQL_URL,
  describeOn,
  sql,
} from '../../support/test-db.js';

const require = createRequire(import.meta.url);

const suite = EMBEDDED_DB ? describe.skip : describe;

@Controller('reports')
@UseGuards(KnoxGuard)
class ReportsController {
  @Get()
  @KnoxAbilities('reports:read')
  read() {
    return { ok: true };
  }
}

const poll = { cache: { bus: 'poll' as const } };

/** A session of another writer (a DBA's, another app's), outside TypeORM. */
async function otherWriter(): Promise<{
  query(text: string, params?: unknown[]): Promise<unknown>;
  end(): Promise<void>;
}> {
  if (TEST_DB === 'mariadb') {
    const mysql = require('mysql2/promise') as {
      createConnection(url: string): Promise<{
        query(text: string, params?: unknown[]): Promise<unknown>;
        end(): Promise<void>;
      }>;
    };
    return mysql.createConnection(TEST_MYSQL_URL);
  }
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  return {
    query: (text, params) => client.query(text, params),
    end: () => client.end(),
  };
}
const key = (token: string) => token.slice(0, 15);

suite.each(['express', 'fastify'] as const)(
  "cache bus 'poll': revocation reaches every instance (%s)",
  (platform) => {
    let a: TestApp;
    let b: TestApp;
    let c: TestApp;

    beforeAll(async () => {
      const controllers = [ReportsController];
      a = await createTestApp({ platform, knox: poll, controllers });
      b = await createTestApp({
        platform,
        knox: poll,
        keepData: true,
        controllers,
      });
      c = await createTestApp({
        platform: platform === 'express' ? 'fastify' : 'express',
        knox: poll,
        keepData: true,
        controllers,
      });
    });
    afterAll(async () => {
      await Promise.all([a, b, c].map((t) => t?.close()));
    });
    beforeEach(async () => {
      await a.reset();
      for (const t of [b, c]) {
        t.clock.set(a.clock.now());
        t.recorder.reset();
      }
      await a.createUser('alice');
      await a.createUser('bob');
    });

    async function cachedEverywhere(user = 'alice'): Promise<string> {
      const token = await login(a, user);
      for (const t of [a, b, c]) {
        await warm(t, token);
      }
      return token;
    }

    async function refusedEverywhere(token: string): Promise<void> {
      for (const t of [a, b, c]) {
        expect(await refusedWithin(t, token)).toBeLessThan(100);
      }
    }

    it('uses the poller, and a cached token costs no query (the reads are not the request’s)', async () => {
      expect(cacheOf(b).pollBus).toBeDefined();
      expect(cacheOf(b).pgListener).toBeUndefined();
      const token = await cachedEverywhere();
      for (const t of [a, b, c]) {
        for (let i = 0; i < 10; i++) {
          expect(await probe(t, token)).toEqual({ status: 200, queries: 0 });
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      }
      expect(cacheOf(b).pollBus!.reads).toBeGreaterThan(1);
    });

    it('logout on another instance', async () => {
      const token = await cachedEverywhere();
      await a.http.post('/auth/logout').set(bearer(token)).expect(204);
      await refusedEverywhere(token);
    });

    it('logoutall on one instance: every token of the user, not the others’', async () => {
      const first = await cachedEverywhere();
      const second = await cachedEverywhere();
      const bobs = await cachedEverywhere('bob');
      await b.http.post('/auth/logoutall').set(bearer(second)).expect(204);
      await refusedEverywhere(first);
      await refusedEverywhere(second);
      for (const t of [a, b, c]) {
        expect(await probe(t, bobs)).toEqual({ status: 200, queries: 0 });
      }
    });

    it('a plain SQL DELETE', async () => {
      const token = await cachedEverywhere();
      await a.dataSource.query(
        sql(`DELETE FROM knox_authtoken WHERE token_key = $1`),
        [key(token)],
      );
      await refusedEverywhere(token);
    });

    it('an expiry brought closer in SQL', async () => {
      const token = await cachedEverywhere();
      await a.dataSource.query(
        sql(`UPDATE knox_authtoken SET expiry = $1 WHERE token_key = $2`),
        [dateParam(new Date(a.clock.now().getTime() - 1000)), key(token)],
      );
      await refusedEverywhere(token);
    });

    it('abilities narrowed in SQL: 403 everywhere', async () => {
      const token = await cachedEverywhere();
      for (const t of [a, b, c]) {
        await t.http.get('/reports').set(bearer(token)).expect(200);
      }
      await a.dataSource.query(
        sql(`UPDATE knox_authtoken SET abilities = $1 WHERE token_key = $2`),
        [abilitiesParam(['posts:read']), key(token)],
      );
      for (const t of [a, b, c]) {
        expect(
          await refusedWithin(t, token, 100, {
            path: '/reports',
            refused: 403,
          }),
        ).toBeLessThan(100);
      }
    });

    it('a user deactivated in SQL, then deleted', async () => {
      const token = await cachedEverywhere();
      const bobs = await cachedEverywhere('bob');
      await a.dataSource.query(
        sql(
          `UPDATE knox_test_user SET "isActive" = false WHERE username = 'alice'`,
        ),
      );
      await refusedEverywhere(token);
      expect(await probe(b, bobs)).toEqual({ status: 200, queries: 0 });
      await a.dataSource.query(
        sql(
          `UPDATE knox_test_user SET "isActive" = true WHERE username = 'alice'`,
        ),
      );
      // Let the reactivation's own log row reach every instance before caching again.
      await new Promise((resolve) => setTimeout(resolve, 150));
      const again = await cachedEverywhere();
      await a.dataSource.query(
        `DELETE FROM knox_test_user WHERE username = 'alice'`,
      );
      await refusedEverywhere(again);
    });

    it('100 revocations in a row (logout, SQL DELETE, SQL UPDATE of the expiry): p99 under 100 ms on the other instance', async () => {
      const latencies: number[] = [];
      for (let i = 0; i < 100; i++) {
        const token = await login(a, 'alice');
        await warm(b, token);
        // At a random point of b's poll cycle (else phase-locked to the read that saw the last).
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 60));
        if (i % 3 === 0) {
          await a.http.post('/auth/logout').set(bearer(token)).expect(204);
        } else if (i % 3 === 1) {
          await a.dataSource.query(
            sql(`DELETE FROM knox_authtoken WHERE token_key = $1`),
            [key(token)],
          );
        } else {
          await a.dataSource.query(
            sql(`UPDATE knox_authtoken SET expiry = $1 WHERE token_key = $2`),
            [dateParam(new Date(a.clock.now().getTime() - 1000)), key(token)],
          );
        }
        latencies.push(await refusedWithin(b, token, 200));
      }
      latencies.sort((x, y) => x - y);
      console.log(
        `poll bus on ${TEST_DB}, revocation on another instance (100 trials, ${platform}): p50 ${latencies[49].toFixed(1)} ms, p99 ${latencies[98].toFixed(1)} ms, max ${latencies[99].toFixed(1)} ms`,
      );
      expect(latencies[98]).toBeLessThan(100);
    }, 60_000);

    // SQLite has one writer at a time: rows become visible in id order, nothing commits late.
    describeOn(['postgres', 'mariadb'], 'a writer committing late', () => {
      it('a writer transaction open for long, committing after later ones (lower id): still seen within 100 ms', async () => {
        for (let trial = 0; trial < 5; trial++) {
          const slow = await cachedEverywhere();
          const fast = await cachedEverywhere();
          const writer = await otherWriter();
          try {
            await writer.query('BEGIN');
            // Takes the next log id now, commits last.
            await writer.query(
              sql(`DELETE FROM knox_authtoken WHERE token_key = $1`),
              [key(slow)],
            );
            await a.dataSource.query(
              sql(`DELETE FROM knox_authtoken WHERE token_key = $1`),
              [key(fast)],
            );
            await refusedEverywhere(fast);
            // b and c have read past the open transaction's id; the token is still valid.
            await new Promise((resolve) => setTimeout(resolve, 150));
            for (const t of [b, c]) {
              expect(await probe(t, slow)).toEqual({ status: 200, queries: 0 });
            }
            await writer.query('COMMIT');
          } finally {
            await writer.end();
          }
          await refusedEverywhere(slow);
        }
      });
    });
  },
);
