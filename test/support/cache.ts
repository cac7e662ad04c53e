import { expect } from '@jest/globals';
import { KnoxCache } from '../../lib/cache/knox-cache.js';
import type { TestApp } from '../support/test-app.js';
import { TEST_DB, rowDate } from '../support/test-db.js';

/** The cache provider of a test app. */
export const cacheOf = (t: TestApp): KnoxCache => t.app.get(KnoxCache);

export const bearer = (token: string) => ({ Authorization: `Token ${token}` });

/** GET /me with `token`: the status and how many statements the app sent for it. */
export async function probe(
  t: TestApp,
  token: string,
): Promise<{ status: number; queries: number }> {
  t.recorder.reset();
  const res = await t.http.get('/me').set(bearer(token));
  return { status: res.status, queries: t.recorder.queries.length };
}

/**
 * Authenticates `token` on `t` until it is served from the cache (asserted: 0 queries), within
 * `limitMs`. A lookup that an invalidation overtakes is not cached (the bus may still be bringing
 * earlier writes, e.g. `reset()`'s, up to a poll interval later): the next request asks again.
 */
export async function warm(
  t: TestApp,
  token: string,
  limitMs = 1000,
): Promise<void> {
  const started = performance.now();
  expect((await probe(t, token)).status).toBe(200);
  for (;;) {
    const { status, queries } = await probe(t, token);
    expect(status).toBe(200);
    if (queries === 0) {
      return;
    }
    if (performance.now() - started > limitMs) {
      throw new Error(`not served from the cache within ${limitMs} ms`);
    }
  }
}

/**
 * Polls GET /me (or `route.path`) on `t` with `token` until it is refused (401, or
 * `route.refused`). Returns how long after the call
 * the last accepted request was sent (0 when none was): a request sent later than that was
 * refused. Fails when a request sent more than `limitMs` after the call is still accepted (a
 * slow answer to a request sent in time does not count against the limit).
 */
export async function refusedWithin(
  t: TestApp,
  token: string,
  limitMs = 100,
  route: { path: string; refused: number } = { path: '/me', refused: 401 },
): Promise<number> {
  const started = performance.now();
  let lastAccepted = 0;
  for (;;) {
    const sent = performance.now() - started;
    const res = await t.http.get(route.path).set(bearer(token));
    if (res.status === route.refused) {
      return lastAccepted;
    }
    expect(res.status).toBe(200);
    lastAccepted = sent;
    if (sent > limitMs) {
      throw new Error(
        `still accepted by a request sent ${sent.toFixed(0)} ms after the revocation`,
      );
    }
  }
}

/** Waits (polling) until `condition` holds; fails after `limitMs`. */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  limitMs = 10_000,
): Promise<void> {
  const started = performance.now();
  while (!(await condition())) {
    if (performance.now() - started > limitMs) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Re-exported: a Date as a raw statement's parameter (token-rows.ts). */
export { dateParam } from './token-rows.js';

/** A raw row's timestamp as a Date (SQLite gives TypeORM's UTC text). */
export function dateOf(value: Date | string): Date {
  return rowDate(value) as Date;
}

/**
 * Abilities as a raw statement's parameter: pg binds a list as `text[]`; MySQL/MariaDB and
 * SQLite store them as JSON text.
 */
export function abilitiesParam(abilities: string[]): string[] | string {
  return TEST_DB === 'postgres' ? abilities : JSON.stringify(abilities);
}

/**
 * {@link probe} once the cache is in service: with the `'poll'` bus, a request that comes when
 * the last read is more than two intervals old (a late read, on a loaded machine) goes to the
 * database by design; a test that counts the queries of cached requests waits for a fresh read.
 */
export async function probeVouched(
  t: TestApp,
  token: string,
): Promise<{ status: number; queries: number }> {
  await until(() => cacheOf(t).available, 'the cache to be vouched for', 1000);
  return probe(t, token);
}

/**
 * With the `'poll'` bus, waits until `t` has read the log past every write committed before the
 * call (a read begun after it): the invalidations of earlier writes (e.g. `reset()`'s deletions,
 * whose user ids MySQL reuses after its AUTO_INCREMENT reset) then no longer arrive during the
 * test. No-op on the other buses.
 */
export async function caughtUp(t: TestApp): Promise<void> {
  const bus = cacheOf(t).pollBus;
  if (bus) {
    const reads = bus.reads;
    await until(() => bus.reads >= reads + 2, 'a read of the log');
  }
}
