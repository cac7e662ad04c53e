/**
 * Issue 23, test strength (b): a token retired by a rotation (living out its grace period) is
 * read-only — using it never touches its row, `last_used_at` included, whether the request is
 * served from the database or from the cache, and even when it was retired after the request
 * read it (the store's UPDATE re-checks). Rows read straight from the table.
 */
import { describe, expect, it } from '@jest/globals';
import { KnoxTokenStore } from '../../../lib/store/knox-token.store.js';
import { useTestApp, type TestApp } from '../../support/test-app.js';
import {
  MINUTE,
  SECOND,
  bearer,
  digestOf,
  rowOf,
} from '../../support/sessions.js';

const me = (t: TestApp, token: string, ip = '203.0.113.9') =>
  t.http
    .get('/me')
    .set('Authorization', bearer(token))
    .set('X-Forwarded-For', ip);

async function rotated(t: TestApp): Promise<{ old: string; row: unknown }> {
  const login = await t.http
    .post('/auth/login')
    .send({ username: 'alice', password: 'secret-password' });
  expect(login.status).toBe(200);
  const old = login.body.token as string;
  t.clock.advance(2 * MINUTE);
  const res = await t.http
    .post('/auth/rotate')
    .set('Authorization', bearer(old));
  expect(res.status).toBe(200);
  const row = await rowOf(t, old);
  expect(row.retired_at).not.toBeNull();
  return { old, row };
}

describe.each([
  ['without the cache', false],
  ['with the cache', true],
] as const)('a retired token is read-only (%s)', (_label, cache) => {
  const t = useTestApp(
    {
      trustProxy: true,
      knox: {
        rotationGracePeriod: 10 * MINUTE,
        autoRefresh: true,
        lastUsedUpdateInterval: 30 * SECOND,
        minRefreshInterval: 30 * SECOND,
        ...(cache ? { cache: true } : {}),
      },
    },
    async (app) => ({ alice: await app.createUser('alice') }),
  );

  it('using it through its grace period writes nothing to its row', async () => {
    const { old, row } = await rotated(t);
    for (let i = 0; i < 8; i++) {
      t.clock.advance(MINUTE);
      const res = await me(t, old);
      expect(res.status).toBe(200);
      // Long past lastUsedUpdateInterval each time: a live token would have been written.
      expect(await rowOf(t, old)).toEqual(row);
    }
    t.clock.advance(3 * MINUTE);
    expect((await me(t, old)).status).toBe(401);
  });

  it('the request-path UPDATE leaves a row retired since it was read untouched', async () => {
    const { old, row } = await rotated(t);
    const store = t.app.get(KnoxTokenStore);
    const written = await store.touch(digestOf(old), {
      lastUsedAt: new Date(t.clock.now().getTime() + 5 * MINUTE),
      lastUsedIp: '198.51.100.77',
      expiry: new Date(t.clock.now().getTime() + 60 * MINUTE),
    });
    expect(written).toMatchObject({
      lastUsedAt: (row as { last_used_at: Date }).last_used_at,
      lastUsedIp: (row as { last_used_ip: string | null }).last_used_ip,
    });
    expect(await rowOf(t, old)).toEqual(row);
  });
});
