/**
 * Issue 10: the Redis pub/sub bus (for deployments where LISTEN is unavailable), through the
 * app's ioredis client, against the real Redis at 127.0.0.1:6379 (REDIS_URL). It carries the
 * library's own writes; what it cannot see (SQL) is bounded by maxAge. While the subscriber is
 * down, the cache is bypassed.
 */
import {
  afterAll,
  beforeAll,
  beforeEach,
  describe,
  expect,
  it,
} from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { KnoxTokenService } from '../../../lib/index.js';
import {
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
import { sql } from '../../support/test-db.js';
import { SECOND } from '../../support/sessions.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const suite = EMBEDDED_DB ? describe.skip : describe;

suite('cache with the Redis bus', () => {
  const name = `knox-cache-test-${process.pid}-${randomBytes(4).toString('hex')}`;
  const channel = `${name}:invalidate`;
  let redisA: Redis;
  let redisB: Redis;
  let a: TestApp;
  let b: TestApp;

  beforeAll(async () => {
    redisA = new Redis(REDIS_URL, { connectionName: `${name}-a` });
    redisB = new Redis(REDIS_URL, { connectionName: `${name}-b` });
    const cache = (redis: Redis) => ({
      maxAge: 30 * SECOND,
      bus: { redis, channel },
    });
    a = await createTestApp({ knox: { cache: cache(redisA) } });
    b = await createTestApp({
      platform: 'fastify',
      knox: { cache: cache(redisB) },
      keepData: true,
    });
  });
  afterAll(async () => {
    await Promise.all([a, b].map((t) => t?.close()));
    await Promise.all([redisA, redisB].map((r) => r?.quit()));
  });
  beforeEach(async () => {
    await a.reset();
    b.clock.set(a.clock.now());
    await a.createUser('alice');
    await a.createUser('bob');
  });

  async function cachedOnBoth(user = 'alice'): Promise<string> {
    const token = await login(a, user);
    await warm(a, token);
    await warm(b, token);
    return token;
  }

  it('serves cached tokens with 0 queries', async () => {
    const token = await cachedOnBoth();
    expect(await probe(b, token)).toEqual({ status: 200, queries: 0 });
  });

  it('a logout, logoutall or revokeAll on one instance is refused on the other within 100 ms', async () => {
    const one = await cachedOnBoth();
    await a.http.post('/auth/logout').set(bearer(one)).expect(204);
    expect(await refusedWithin(b, one)).toBeLessThan(100);

    const two = await cachedOnBoth();
    const three = await cachedOnBoth();
    await b.http.post('/auth/logoutall').set(bearer(two)).expect(204);
    expect(await refusedWithin(a, three)).toBeLessThan(100);

    const four = await cachedOnBoth();
    const [{ id }] = (await a.dataSource.query(
      `SELECT id FROM knox_test_user WHERE username = 'alice'`,
    )) as { id: number }[];
    await a.app.get(KnoxTokenService).revokeAll(id);
    expect(await refusedWithin(b, four)).toBeLessThan(100);
  });

  it('invalidateUser on one instance reaches the other', async () => {
    const token = await cachedOnBoth();
    const bobs = await cachedOnBoth('bob');
    // Redis sees no SQL: the app says so itself.
    await a.dataSource.query(
      sql(
        `UPDATE knox_test_user SET "isActive" = false WHERE username = 'alice'`,
      ),
    );
    expect(await probe(b, token)).toEqual({ status: 200, queries: 0 });
    const [{ id }] = (await a.dataSource.query(
      `SELECT id FROM knox_test_user WHERE username = 'alice'`,
    )) as { id: number }[];
    a.app.get(KnoxTokenService).invalidateUser(id);
    expect(await refusedWithin(b, token)).toBeLessThan(100);
    expect(await probe(b, bobs)).toEqual({ status: 200, queries: 0 });
  });

  it('a SQL DELETE is not seen, and maxAge bounds it (documented)', async () => {
    const token = await cachedOnBoth();
    await a.dataSource.query(
      sql(`DELETE FROM knox_authtoken WHERE token_key = $1`),
      [token.slice(0, 15)],
    );
    expect(await probe(b, token)).toEqual({ status: 200, queries: 0 });
    b.clock.advance(30 * SECOND);
    expect((await probe(b, token)).status).toBe(401);
  });

  it('subscriber connection killed: bypassed while down, back empty once subscribed again', async () => {
    const token = await cachedOnBoth();
    const cache = cacheOf(b).store!;
    const clients = (await redisA.client('LIST')) as string;
    const line = clients
      .split('\n')
      .find((l) => l.includes(`name=${name}-b`) && /\bsub=[1-9]/.test(l));
    expect(line).toBeDefined();
    const killedId = /\bid=(\d+)/.exec(line!)![1];
    await redisA.client('KILL', 'ID', killedId);
    await until(() => !cache.available, 'the subscriber to be seen down');
    await a.http.post('/auth/logout').set(bearer(token)).expect(204);
    expect((await probe(b, token)).status).toBe(401);
    await until(() => cache.available, 'the subscriber to be back');
    expect(cache.size).toBe(0);
    const other = await login(a, 'alice');
    await warm(b, other);
    await a.http.post('/auth/logout').set(bearer(other)).expect(204);
    expect(await refusedWithin(b, other)).toBeLessThan(100);
  });
});
