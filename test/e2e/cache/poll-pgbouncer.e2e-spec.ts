/**
 * Issue 21: the `'poll'` bus through PgBouncer in transaction mode, where `LISTEN` cannot work
 * (a session's notifications go to whichever client holds the server connection). Runs when
 * KNOX_TEST_PGBOUNCER_URL points at a PgBouncer (`pool_mode = transaction`) in front of the test
 * database, e.g. `postgres://postgres@127.0.0.1:6543/test`.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestApp, login, type TestApp } from '../../support/test-app.js';
import { bearer, cacheOf, refusedWithin, warm } from '../../support/cache.js';

const PGBOUNCER_URL = process.env.KNOX_TEST_PGBOUNCER_URL;
const suite = PGBOUNCER_URL ? describe : describe.skip;

suite("cache bus 'poll' through PgBouncer (transaction mode)", () => {
  let a: TestApp;
  let b: TestApp;

  beforeAll(async () => {
    const knox = { cache: { bus: 'poll' as const } };
    a = await createTestApp({ knox, databaseUrl: PGBOUNCER_URL });
    b = await createTestApp({
      knox,
      keepData: true,
      databaseUrl: PGBOUNCER_URL,
    });
  });
  afterAll(async () => {
    await Promise.all([a, b].map((t) => t?.close()));
  });

  it('revocations on one instance and in SQL reach the other within 100 ms', async () => {
    await a.createUser('alice');
    expect(cacheOf(b).pollBus!.connects).toBe(1);
    const latencies: number[] = [];
    for (let i = 0; i < 40; i++) {
      const token = await login(a, 'alice');
      await warm(b, token);
      if (i % 2 === 0) {
        await a.http.post('/auth/logout').set(bearer(token)).expect(204);
      } else {
        await a.dataSource.query(
          `DELETE FROM knox_authtoken WHERE token_key = $1`,
          [token.slice(0, 15)],
        );
      }
      latencies.push(await refusedWithin(b, token));
    }
    latencies.sort((x, y) => x - y);
    expect(latencies[latencies.length - 1]).toBeLessThan(100);
  }, 30_000);
});
