/**
 * Issue 23, item 2: one GraphQL operation is one authentication per token, with the cache on
 * and off, however many aliases it has; concurrent lookups of one token share one query.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Module, UseGuards } from '@nestjs/common';
import { ApolloDriver, type ApolloDriverConfig } from '@nestjs/apollo';
import { GraphQLModule, Query, Resolver } from '@nestjs/graphql';
import {
  KnoxAbilities,
  KnoxMessages,
  KnoxTokenService,
  KnoxUser,
} from '../../../lib/index.js';
import { KnoxGqlGuard } from '../../../lib/transports/graphql/index.js';
import type { TestUser } from '../../support/fixtures.js';
import {
  aliases,
  bootGraphQL as boot,
  lookups,
  postGql as post,
} from '../../support/graphql.js';
import { refusedWithin, until } from '../../support/cache.js';
import { LogLines } from '../../support/log-lines.js';
import { digestOf } from '../../support/sessions.js';
import { DbOutage } from '../../support/db-outage.js';
import { EMBEDDED_DB, login, type TestApp } from '../../support/test-app.js';
import { sql } from '../../support/test-db.js';

describe.each([
  ['cache off', false],
  ['cache on', true],
] as const)(
  'one GraphQL operation is one authentication per token (%s, issue 23 item 2)',
  (_name, cache) => {
    const log = new LogLines();
    let t: TestApp;
    beforeAll(async () => {
      t = await boot(log, { knox: { cache } });
    });
    afterAll(() => t.close());

    it('1 000 aliases with a valid token on a cold cache: one lookup, one transaction at most', async () => {
      for (let trial = 0; trial < 3; trial++) {
        const token = await login(t, 'alice');
        t.recorder.reset();
        const res = await post(t, aliases(1000), token);
        expect(res.body.errors).toBeUndefined();
        expect(Object.keys(res.body.data ?? {})).toHaveLength(1000);
        expect(lookups(t)).toBe(1);
        // The lookup, and the lastUsedAt write when one is due: never one per alias.
        expect(t.recorder.statements.length).toBeLessThanOrEqual(2);
        expect(
          t.recorder.queries.filter((q) =>
            /^(START TRANSACTION|BEGIN)/i.test(q.sql),
          ).length,
        ).toBeLessThanOrEqual(1);
      }
      expect(log.lines(['error', 'warn'])).toBe(0);
    });
  },
);

@Resolver()
@UseGuards(KnoxGqlGuard)
class PostsResolver {
  @KnoxAbilities('posts:read')
  @Query('posts')
  posts(@KnoxUser() user: TestUser) {
    return `posts of ${user.username}`;
  }

  @KnoxAbilities('posts:write')
  @Query('drafts')
  drafts(@KnoxUser() user: TestUser) {
    return `drafts of ${user.username}`;
  }
}

@Module({
  imports: [
    GraphQLModule.forRoot<ApolloDriverConfig>({
      driver: ApolloDriver,
      typeDefs: 'type Query { posts: String, drafts: String }',
      includeStacktraceInErrorResponses: false,
    }),
  ],
  providers: [PostsResolver],
})
class PostsApp {}

describe('the shared authentication still checks each field’s abilities', () => {
  const log = new LogLines();
  let t: TestApp;
  beforeAll(async () => {
    t = await boot(log, { imports: [PostsApp] });
  });
  afterAll(() => t.close());

  it('a posts:read token: every `posts` alias answers, every `drafts` alias is FORBIDDEN, one lookup', async () => {
    const [alice] = (await t.dataSource.query(
      `SELECT * FROM knox_test_user WHERE username = 'alice'`,
    )) as TestUser[];
    const { token } = await t.app
      .get(KnoxTokenService)
      .create(alice, { abilities: ['posts:read'] });
    const fields = Array.from({ length: 200 }, (_, i) =>
      i % 2 === 0 ? `p${i}: posts` : `d${i}: drafts`,
    );
    t.recorder.reset();
    log.reset();
    const res = await post(t, `{ ${fields.join(' ')} }`, token);
    expect(lookups(t)).toBe(1);
    const data = res.body.data ?? {};
    for (let i = 0; i < 200; i += 2) {
      expect(data[`p${i}`]).toBe('posts of alice');
      expect(data[`d${i + 1}`]).toBeNull();
    }
    expect(res.body.errors).toHaveLength(100);
    for (const error of res.body.errors ?? []) {
      expect(error).toMatchObject({
        message: KnoxMessages.MISSING_ABILITIES(['posts:write']),
        extensions: { code: 'FORBIDDEN', status: 403 },
      });
    }
    expect(log.lines()).toBe(0);
  });
});

describe('many aliases do not starve a concurrent login (issue 23 item 2)', () => {
  const log = new LogLines();
  let t: TestApp;
  beforeAll(async () => {
    t = await boot(log, {
      dataSourceExtra: { max: 2, connectionTimeoutMillis: 5000 },
    });
  });
  afterAll(() => t.close());

  it('9 000 aliases and a login at the same time on a pool of 2: both answer, no database error logged', async () => {
    const token = await login(t, 'alice');
    log.reset();
    t.recorder.reset();
    const [gql, loginRes] = await Promise.all([
      post(t, aliases(9000), token),
      new Promise((resolve) => setTimeout(resolve, 20)).then(() =>
        t.http
          .post('/auth/login')
          .send({ username: 'alice', password: 'secret-password' }),
      ),
    ]);
    expect({ status: loginRes.status, log: log.entries }).toEqual({
      status: 200,
      log: [],
    });
    expect(gql.status).toBe(200);
    expect(gql.body.errors).toBeUndefined();
    expect(Object.keys(gql.body.data ?? {})).toHaveLength(9000);
    expect(lookups(t)).toBeLessThanOrEqual(2);
    expect(log.lines(['error', 'warn'])).toBe(0);
  });
});

describe.each([
  ['cache off', false],
  ['cache on', true],
] as const)(
  'concurrent requests with one token share one lookup (%s, issue 23 item 2)',
  (_name, cache) => {
    const log = new LogLines();
    let t: TestApp;
    let outage: DbOutage;
    /** Requests that reached the app (a middleware counts them). */
    let arrived = 0;
    beforeAll(async () => {
      outage = await DbOutage.start();
      t = await boot(log, {
        knox: { cache },
        ...outage.appOptions(),
        configureApp: (app) =>
          app.use((_req: unknown, _res: unknown, next: () => void) => {
            arrived++;
            next();
          }),
      });
    });
    afterAll(async () => {
      outage?.release();
      await t?.close();
      await outage?.close();
    });
    const me = (token: string) =>
      t.http.get('/me').set('Authorization', `Token ${token}`);

    /**
     * Sends `n` requests at once while what the app sends to the database is held (by the proxy;
     * on SQLite before the driver), so that they are all in flight together for real; releases
     * it once all reached the app.
     */
    async function burst(token: string, n: number) {
      t.recorder.reset();
      arrived = 0;
      outage.hold(t.dataSource);
      const answers = Promise.all(Array.from({ length: n }, () => me(token)));
      await until(() => arrived === n, `${n} requests`);
      // The guard runs a few microtasks after the middleware.
      await new Promise((resolve) => setTimeout(resolve, 50));
      outage.release();
      return answers;
    }

    it('50 concurrent GET /me on a cold cache: one lookup, 50 answers', async () => {
      for (let trial = 0; trial < 5; trial++) {
        const token = await login(t, 'alice');
        const answers = await burst(token, 50);
        expect(answers.map((res) => res.status)).toEqual(Array(50).fill(200));
        expect(new Set(answers.map((res) => res.body.username))).toEqual(
          new Set(['alice']),
        );
        expect(lookups(t)).toBe(1);
      }
    });

    it('a shared refusal: 50 concurrent requests with an unknown token cost one lookup', async () => {
      const answers = await burst('a'.repeat(64), 50);
      expect(answers.map((res) => res.status)).toEqual(Array(50).fill(401));
      expect(lookups(t)).toBe(1);
    });

    // With the cache on, the refusal comes from the trigger's NOTIFY, which the embedded PGlite
    // (one PostgreSQL session for every client) does not deliver to the listener in time; like
    // the other cross-connection cache tests, this one runs on a real server (CI runs both).
    const sqlRevocation = cache && EMBEDDED_DB ? it.skip : it;
    sqlRevocation(
      'nothing is kept once the flight settles: a token revoked in SQL right after is refused',
      async () => {
        // A settled flight that kept its answer would serve the token until the cache TTL: each
        // trial must see the refusal (within a second), and nine in ten within the bus's 100 ms
        // (the bus's own p99 is measured over 100 revocations in cache/invalidation.e2e-spec.ts).
        const latencies: number[] = [];
        for (let trial = 0; trial < 10; trial++) {
          const token = await login(t, 'alice');
          await Promise.all(Array.from({ length: 10 }, () => me(token)));
          if (cache) {
            // The cache keeps it until the trigger's notification: wait for the refusal.
            await t.dataSource.query(
              sql(`DELETE FROM knox_authtoken WHERE digest = $1`),
              [digestOf(token)],
            );
            latencies.push(await refusedWithin(t, token, 1000));
          } else {
            await t.dataSource.query(
              sql(`DELETE FROM knox_authtoken WHERE digest = $1`),
              [digestOf(token)],
            );
            expect((await me(token)).status).toBe(401);
          }
        }
        if (cache) {
          latencies.sort((x, y) => x - y);
          expect(latencies[8]).toBeLessThan(100);
        }
      },
    );

    it('a revocation racing a burst of concurrent requests is never cached as valid (many trials)', async () => {
      for (let trial = 0; trial < 20; trial++) {
        const token = await login(t, 'alice');
        const burst = Array.from({ length: 10 }, () => me(token));
        const revoked = t.http
          .post('/auth/logout')
          .set('Authorization', `Token ${token}`);
        await Promise.all([...burst, revoked]);
        expect(await refusedWithin(t, token)).toBeLessThan(100);
      }
      expect(log.lines(['error', 'warn'])).toBe(0);
    });
  },
);
