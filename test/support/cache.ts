import { expect } from '@jest/globals';
import { KnoxCache } from '../../lib/auth/cache/knox-cache.js';
import type { TestApp } from '../support/test-app.js';

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

/** Authenticates `token` on `t` until it is served from the cache (asserted: 0 queries). */
export async function warm(t: TestApp, token: string): Promise<void> {
  expect((await probe(t, token)).status).toBe(200);
  expect(await probe(t, token)).toEqual({ status: 200, queries: 0 });
}

/**
 * Polls GET /me on `t` with `token` until it is refused (401); the time it took, in ms. Fails
 * when it is still accepted after `limitMs`.
 */
export async function refusedWithin(
  t: TestApp,
  token: string,
  limitMs = 100,
): Promise<number> {
  const started = performance.now();
  for (;;) {
    const res = await t.http.get('/me').set(bearer(token));
    const elapsed = performance.now() - started;
    if (res.status === 401) {
      return elapsed;
    }
    expect(res.status).toBe(200);
    if (elapsed > limitMs) {
      throw new Error(
        `still accepted ${elapsed.toFixed(0)} ms after the revocation`,
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
