/**
 * Planted-bug pass of issue 23: with `revokeById` or `rotate` no longer forgetting the changed
 * token in the local cache, every cache test still passed — the database's invalidation
 * message (NOTIFY) reaches the writer's own instance a few milliseconds later and covers the
 * gap, so the revoked or retired token stays servable from the writer's own cache for that
 * long (and for a whole poll interval with a polling bus). Every write path must forget what it
 * changed itself, before it answers: pinned here on the real cache of a real app.
 */
import {
  afterEach,
  beforeEach,
  describe,
  expect,
  it,
  jest,
} from '@jest/globals';
import { KnoxTokenService } from '../../../lib/index.js';
import { EMBEDDED_DB, useTestApp } from '../../support/test-app.js';
import { bearer, cacheOf, warm } from '../../support/cache.js';
import { MINUTE, digestOf } from '../../support/sessions.js';

const suite = EMBEDDED_DB ? describe.skip : describe;

suite.each([
  ['no grace period', 0],
  ['a grace period', MINUTE],
] as const)('each write path forgets what it changed (%s)', (_label, grace) => {
  const t = useTestApp(
    {
      knox: {
        cache: true,
        rotationGracePeriod: grace,
        tokenLimitPerUser: 3,
        tokenLimitPolicy: 'evict-oldest',
      },
    },
    async (app) => ({ alice: await app.createUser('alice') }),
  );
  let forgotten: string[];
  beforeEach(() => {
    forgotten = [];
    const cache = cacheOf(t);
    const forget = cache.forgetTokens.bind(cache);
    jest
      .spyOn(cache, 'forgetTokens')
      .mockImplementation((digests: readonly string[]) => {
        forgotten.push(...digests);
        return forget(digests);
      });
  });
  afterEach(() => {
    jest.restoreAllMocks();
  });

  const loginCached = async (): Promise<string> => {
    const res = await t.http
      .post('/auth/login')
      .send({ username: 'alice', password: 'secret-password' });
    expect(res.status).toBe(200);
    await warm(t, res.body.token);
    return res.body.token;
  };

  it('DELETE /auth/tokens/:id, logout, logoutothers, logoutall', async () => {
    const kept = await loginCached();
    const other = await loginCached();
    const list = await t.http.get('/auth/tokens').set(bearer(kept)).expect(200);
    const id = (list.body as { id: string; current: boolean }[]).find(
      (s) => !s.current,
    )!.id;
    forgotten = [];
    await t.http.delete(`/auth/tokens/${id}`).set(bearer(kept)).expect(204);
    expect(forgotten).toContain(digestOf(other));

    const third = await loginCached();
    forgotten = [];
    await t.http.post('/auth/logoutothers').set(bearer(kept)).expect(204);
    expect(forgotten).toContain(digestOf(third));

    forgotten = [];
    await t.http.post('/auth/logoutall').set(bearer(kept)).expect(204);
    expect(forgotten).toContain(digestOf(kept));

    const last = await loginCached();
    forgotten = [];
    await t.http.post('/auth/logout').set(bearer(last)).expect(204);
    expect(forgotten).toContain(digestOf(last));
  });

  it('rotate forgets the rotated token; an eviction by the limit forgets the evicted one', async () => {
    const old = await loginCached();
    forgotten = [];
    await t.http.post('/auth/rotate').set(bearer(old)).expect(200);
    expect(forgotten).toContain(digestOf(old));

    const service = t.app.get(KnoxTokenService);
    await loginCached();
    await loginCached();
    const digests = async () =>
      (await t.tokenRows()).map((row) => row.digest as string);
    const before = await digests();
    expect(before).toHaveLength(3);
    forgotten = [];
    // The limit is 3 live tokens: this one evicts the oldest.
    await service.create(t.seeded.alice);
    const after = await digests();
    const evicted = before.filter((digest) => !after.includes(digest));
    expect(evicted).toHaveLength(1);
    expect(forgotten).toEqual(expect.arrayContaining(evicted));
  });
});
