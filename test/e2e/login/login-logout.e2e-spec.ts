import { beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { KnoxEvents, KnoxTokenService } from '../../../lib/index.js';
import { TestUser } from '../../support/fixtures.js';
import { PLATFORMS } from '../../support/platforms.js';
import {
  login,
  useTestApp,
  type SharedTestApp,
} from '../../support/test-app.js';
import {
  DAY,
  HOUR,
  MESSAGES,
  basic,
  expectLimitExceeded,
  expectUnauthorized,
} from '../../support/http.js';
import { T0, digestOf } from '../../support/sessions.js';
import { sql } from '../../support/test-db.js';

const BASIC_REALM = 'Basic realm="api"';

describe.each(PLATFORMS)(
  'login, logout, logoutall (knox defaults, %s)',
  (platform) => {
    const t = useTestApp({ platform }, (app) => app.createUser('alice'));

    it('five logins make five tokens with non-empty keys', async () => {
      const tokens: string[] = [];
      for (let i = 0; i < 5; i += 1) {
        tokens.push(await login(t, 'alice'));
      }
      expect(new Set(tokens).size).toBe(5);
      const rows = await t.tokenRows();
      expect(rows).toHaveLength(5);
      for (const row of rows) {
        expect(row.token_key).toHaveLength(15);
      }
      expect(rows.map((r) => r.token_key).sort()).toEqual(
        tokens.map((token) => token.slice(0, 15)).sort(),
      );
    });

    it('answers { expiry, token, id } and no `user` key without serializeUser', async () => {
      const res = await t.http
        .post('/auth/login')
        .send({ username: 'alice', password: 'secret-password' });
      expect(res.status).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(['expiry', 'id', 'token']);
      // The public id of the new session, as GET /auth/tokens lists it.
      expect(res.body.id).toBe((await t.tokenRows())[0].id);
      expect(res.headers['cache-control']).toBe('no-store');
    });

    it("a new token's expiry is exactly now + 10 h under a frozen clock", async () => {
      t.clock.set('2031-06-15T12:34:56.789Z');
      const res = await t.http
        .post('/auth/login')
        .send({ username: 'alice', password: 'secret-password' });
      expect(res.body.expiry).toBe('2031-06-15T22:34:56.789Z');
      const [row] = await t.tokenRows();
      expect(row.expiry.toISOString()).toBe('2031-06-15T22:34:56.789Z');
      expect(row.created.toISOString()).toBe('2031-06-15T12:34:56.789Z');
    });

    it('two tokens of one user have different digests', async () => {
      await login(t, 'alice');
      await login(t, 'alice');
      const [a, b] = await t.tokenRows();
      expect(a.digest).not.toBe(b.digest);
      expect(a.user_id).toBe(b.user_id);
    });

    it('the token is 64 lowercase hex characters', async () => {
      const token = await login(t, 'alice');
      expect(token).toMatch(/^[0-9a-f]{64}$/);
    });

    it('the digest is 128 lowercase hex: SHA-512 of the token; the plaintext is stored nowhere', async () => {
      const token = await login(t, 'alice');
      const [row] = await t.tokenRows();
      expect(row.digest).toMatch(/^[0-9a-f]{128}$/);
      expect(row.digest).toBe(createHash('sha512').update(token).digest('hex'));
      expect(row.token_key).toBe(token.slice(0, 15));
      expect(JSON.stringify(row)).not.toContain(token);
    });

    it('takes the credentials by HTTP Basic', async () => {
      const res = await t.http
        .post('/auth/login')
        .set('Authorization', basic('alice', 'secret-password'));
      expect(res.status).toBe(200);
      expect(res.body.token).toMatch(/^[0-9a-f]{64}$/);
      const me = await t.http
        .get('/me')
        .set('Authorization', `Token ${res.body.token}`);
      expect(me.body.username).toBe('alice');
    });

    it('takes the credentials as a JSON body', async () => {
      const res = await t.http
        .post('/auth/login')
        .send({ username: 'alice', password: 'secret-password' });
      expect(res.status).toBe(200);
      const me = await t.http
        .get('/me')
        .set('Authorization', `Token ${res.body.token}`);
      expect(me.body.username).toBe('alice');
    });

    it('never accepts a token as a login credential', async () => {
      const token = await login(t, 'alice');
      for (const scheme of ['Token', 'Bearer']) {
        const res = await t.http
          .post('/auth/login')
          .set('Authorization', `${scheme} ${token}`);
        expectUnauthorized(res, MESSAGES.NOT_PROVIDED, BASIC_REALM);
      }
      expect(await t.tokenRows()).toHaveLength(1);
    });

    it('answers a login without credentials 401 "Authentication credentials were not provided."', async () => {
      const res = await t.http.post('/auth/login');
      expectUnauthorized(res, MESSAGES.NOT_PROVIDED, BASIC_REALM);
    });

    it('answers a wrong password and an unknown user identically', async () => {
      const wrong = await t.http
        .post('/auth/login')
        .send({ username: 'alice', password: 'wrong-password' });
      const unknown = await t.http
        .post('/auth/login')
        .send({ username: 'nobody', password: 'wrong-password' });
      const wrongBasic = await t.http
        .post('/auth/login')
        .set('Authorization', basic('alice', 'wrong-password'));
      const unknownBasic = await t.http
        .post('/auth/login')
        .set('Authorization', basic('nobody', 'wrong-password'));
      for (const res of [wrong, unknown, wrongBasic, unknownBasic]) {
        expectUnauthorized(res, MESSAGES.BAD_CREDENTIALS, BASIC_REALM);
      }
      expect(unknown.text).toBe(wrong.text);
      expect(await t.tokenRows()).toHaveLength(0);
    });

    it('refuses an inactive user at login: 401 "User inactive or deleted."', async () => {
      await t.createUser('bob', 'secret-password', false);
      const res = await t.http
        .post('/auth/login')
        .send({ username: 'bob', password: 'secret-password' });
      expectUnauthorized(res, MESSAGES.USER_INACTIVE, BASIC_REALM);
      expect(await t.tokenRows()).toHaveLength(0);
    });

    it('refuses the token of a user made inactive since: 401 "User inactive or deleted."', async () => {
      const token = await login(t, 'alice');
      await t.dataSource.query(
        sql(
          `UPDATE knox_test_user SET "isActive" = false WHERE username = 'alice'`,
        ),
      );
      const res = await t.http
        .get('/me')
        .set('Authorization', `Token ${token}`);
      expectUnauthorized(res, MESSAGES.USER_INACTIVE);
    });

    it('logout with one of two tokens leaves the other, which still works', async () => {
      const first = await login(t, 'alice');
      const second = await login(t, 'alice');
      const out = await t.http
        .post('/auth/logout')
        .set('Authorization', `Token ${first}`);
      expect(out.status).toBe(204);
      expect(out.text).toBe('');
      const rows = await t.tokenRows();
      expect(rows).toHaveLength(1);
      expect(rows[0].token_key).toBe(second.slice(0, 15));
      expectUnauthorized(
        await t.http.get('/me').set('Authorization', `Token ${first}`),
        MESSAGES.INVALID_TOKEN,
      );
      const me = await t.http
        .get('/me')
        .set('Authorization', `Token ${second}`);
      expect(me.status).toBe(200);
      const logout = t.events.find((e) => e.name === KnoxEvents.LOGOUT);
      expect(logout?.payload).toMatchObject({
        userId: rows[0].user_id,
        tokenKey: first.slice(0, 15),
      });
    });

    it("logoutall leaves none of the user's tokens (never-expiring too), another user's untouched", async () => {
      const bob = await t.createUser('bob');
      const alice = await login(t, 'alice');
      await login(t, 'alice');
      const service = t.app.get(KnoxTokenService);
      const aliceUser = await t.dataSource
        .getRepository('TestUser')
        .findOneByOrFail({ username: 'alice' });
      await service.create(aliceUser, { ttl: null });
      await login(t, 'bob');
      await service.create(bob, { ttl: null });
      expect(await t.tokenRows()).toHaveLength(5);

      const res = await t.http
        .post('/auth/logoutall')
        .set('Authorization', `Token ${alice}`);
      expect(res.status).toBe(204);
      const rows = await t.tokenRows();
      expect(rows).toHaveLength(2);
      expect(rows.every((row) => row.user_id === bob.id)).toBe(true);
      const event = t.events.find((e) => e.name === KnoxEvents.LOGOUT_ALL);
      expect(event?.payload).toMatchObject({ userId: aliceUser.id, count: 3 });
    });

    it('answers logout and logoutall without a token 401 with WWW-Authenticate: Token', async () => {
      for (const path of ['/auth/logout', '/auth/logoutall']) {
        expectUnauthorized(await t.http.post(path), MESSAGES.NOT_PROVIDED);
      }
    });

    it('answers a wrong method 405, after authentication (401 before)', async () => {
      const token = await login(t, 'alice');
      for (const path of ['/auth/login', '/auth/logout', '/auth/logoutall']) {
        expectUnauthorized(await t.http.get(path), MESSAGES.NOT_PROVIDED);
        const res = await t.http
          .get(path)
          .set('Authorization', `Token ${token}`);
        expect({ status: res.status, body: res.body }).toEqual({
          status: 405,
          body: {
            statusCode: 405,
            message: 'Method "GET" not allowed.',
            error: 'Method Not Allowed',
          },
        });
        expect(res.headers.allow).toBe('POST');
        const put = await t.http
          .put(path)
          .set('Authorization', `Token ${token}`);
        expect(put.status).toBe(405);
        expect(put.headers.allow).toBe('POST');
      }
      const list = await t.http
        .put('/auth/tokens')
        .set('Authorization', `Token ${token}`);
      expect(list.status).toBe(405);
      expect(list.headers.allow).toBe('GET, POST');
      const one = await t.http
        .get('/auth/tokens/00000000-0000-4000-8000-000000000000')
        .set('Authorization', `Token ${token}`);
      expect(one.status).toBe(405);
      expect(one.headers.allow).toBe('PATCH, DELETE');
      const post = await t.http
        .post('/auth/tokens/00000000-0000-4000-8000-000000000000')
        .set('Authorization', `Token ${token}`);
      expect(post.status).toBe(405);
      expect(post.headers.allow).toBe('PATCH, DELETE');
      expect(await t.tokenRows()).toHaveLength(1);
    });

    it('emits knox.login with the user id, token key, IP and user agent, never the plaintext', async () => {
      const res = await t.http
        .post('/auth/login')
        .set('User-Agent', 'knox-test/1.0')
        .send({ username: 'alice', password: 'secret-password' });
      const token = res.body.token as string;
      const [row] = await t.tokenRows();
      const event = t.events.find((e) => e.name === KnoxEvents.LOGIN);
      expect(event?.payload).toMatchObject({
        userId: row.user_id,
        tokenId: row.id,
        tokenKey: token.slice(0, 15),
        userAgent: 'knox-test/1.0',
      });
      expect(event?.payload.ip).toEqual(expect.stringMatching(/127\.0\.0\.1/));
      expect(event?.payload.expiry).toEqual(new Date(T0.getTime() + 10 * HOUR));
      expect(JSON.stringify(t.events)).not.toContain(token);
      expect(JSON.stringify(t.events)).not.toContain(row.digest);
    });
  },
);

describe.each(PLATFORMS)(
  'login with serializeUser and formatExpiry (%s)',
  (platform) => {
    const t = useTestApp(
      {
        platform,
        knox: {
          serializeUser: (user) => ({ username: user.username }),
          formatExpiry: (expiry) => `custom:${expiry.getTime()}`,
        },
      },
      (app) => app.createUser('alice'),
    );

    it('puts the serialized user, with its username, in the login response', async () => {
      const res = await t.http
        .post('/auth/login')
        .send({ username: 'alice', password: 'secret-password' });
      expect(res.status).toBe(200);
      expect(res.body.user).toEqual({ username: 'alice' });
    });

    it('formats the expiry with the custom formatExpiry', async () => {
      const res = await t.http
        .post('/auth/login')
        .send({ username: 'alice', password: 'secret-password' });
      expect(res.body.expiry).toBe(`custom:${T0.getTime() + 10 * HOUR}`);
    });
  },
);

describe('login with tokenTtl: null', () => {
  const t = useTestApp({ knox: { tokenTtl: null } }, (app) =>
    app.createUser('alice'),
  );

  it('answers expiry: null, stores a null expiry, and the token never expires', async () => {
    const res = await t.http
      .post('/auth/login')
      .send({ username: 'alice', password: 'secret-password' });
    expect(res.status).toBe(200);
    expect(res.body.expiry).toBeNull();
    const [row] = await t.tokenRows();
    expect(row.expiry).toBeNull();
    t.clock.advance(100 * 365 * DAY);
    const me = await t.http
      .get('/me')
      .set('Authorization', `Token ${res.body.token}`);
    expect(me.status).toBe(200);
  });
});

describe.each(PLATFORMS)('per-login hooks (%s)', (platform) => {
  const t = useTestApp(
    {
      platform,
      knox: {
        autoRefresh: true,
        getTokenTtl: ({ body }) =>
          body.remember === true ? 30 * DAY : undefined,
        getTokenPrefix: ({ body }) =>
          body.client === 'cli' ? 'cli_' : undefined,
        getTokenLimitPerUser: ({ user }) =>
          user.username === 'limited' ? 1 : undefined,
        getLoginResponse: (response, { user }) => ({
          ...response,
          greeting: `hello ${user.username}`,
        }),
      },
    },
    (app) => app.createUser('alice'),
  );

  it('"remember me" gets a longer TTL through getTokenTtl; others get the default', async () => {
    const remembered = await t.http
      .post('/auth/login')
      .send({ username: 'alice', password: 'secret-password', remember: true });
    expect(remembered.body.expiry).toBe(
      new Date(T0.getTime() + 30 * DAY).toISOString(),
    );
    const normal = await t.http
      .post('/auth/login')
      .send({ username: 'alice', password: 'secret-password' });
    expect(normal.body.expiry).toBe(
      new Date(T0.getTime() + 10 * HOUR).toISOString(),
    );
  });

  it('auto refresh extends a remembered token by its own TTL, not the default one', async () => {
    const token = await login(t, 'alice', 'secret-password', {
      remember: true,
    });
    t.clock.advance(2 * DAY);
    const me = await t.http.get('/me').set('Authorization', `Token ${token}`);
    expect(me.status).toBe(200);
    const [row] = await t.tokenRows();
    expect(row.expiry.toISOString()).toBe(
      new Date(T0.getTime() + 32 * DAY).toISOString(),
    );
  });

  it('getTokenPrefix chooses the prefix per login, and the prefixed token works', async () => {
    const token = await login(t, 'alice', 'secret-password', { client: 'cli' });
    expect(token).toMatch(/^cli_[0-9a-f]{64}$/);
    const [row] = await t.tokenRows();
    expect(row.token_key).toBe(token.slice(0, 15));
    const me = await t.http.get('/me').set('Authorization', `Token ${token}`);
    expect(me.status).toBe(200);
  });

  it('getTokenLimitPerUser sets the limit per user', async () => {
    await t.createUser('limited');
    await login(t, 'limited');
    const second = await t.http
      .post('/auth/login')
      .send({ username: 'limited', password: 'secret-password' });
    expectLimitExceeded(second);
    for (let i = 0; i < 3; i += 1) {
      await login(t, 'alice');
    }
    expect(await t.tokenRows()).toHaveLength(4);
  });

  it('getLoginResponse reshapes the login response', async () => {
    const res = await t.http
      .post('/auth/login')
      .send({ username: 'alice', password: 'secret-password' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      expiry: new Date(T0.getTime() + 10 * HOUR).toISOString(),
      token: expect.stringMatching(/^[0-9a-f]{64}$/),
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      greeting: 'hello alice',
    });
  });
});

describe('per-login hooks that throw or return garbage', () => {
  let fail: Record<string, unknown> = {};
  const t = useTestApp(
    {
      knox: {
        tokenLimitPerUser: 2,
        tokenLimitPolicy: 'evict-oldest',
        getTokenTtl: () => fail.ttl as number | undefined,
        getTokenLimitPerUser: () => fail.limit as number | undefined,
        serializeUser: (user) => {
          if (fail.serializeUser) {
            throw new Error('serializer bug');
          }
          return { id: user.id };
        },
        formatExpiry: (expiry) => {
          if (fail.formatExpiry) {
            throw new Error('formatter bug');
          }
          return expiry.toISOString();
        },
        getLoginResponse: async (response) => {
          if (fail.getLoginResponse) {
            throw new Error('response bug');
          }
          return response;
        },
      },
    },
    async (app) => {
      fail = {};
      await app.createUser('alice');
    },
  );
  let service: KnoxTokenService;
  beforeAll(() => {
    service = t.app.get(KnoxTokenService);
  });

  const attempt = () =>
    t.http
      .post('/auth/login')
      .send({ username: 'alice', password: 'secret-password' });

  it('a hook failing after the token was made leaves no token behind (500, limit untouched)', async () => {
    const kept = await login(t, 'alice');
    for (const hook of ['serializeUser', 'formatExpiry', 'getLoginResponse']) {
      fail = { [hook]: true };
      t.events.length = 0;
      const res = await attempt();
      expect({ hook, status: res.status, body: res.body }).toEqual({
        hook,
        status: 500,
        body: { statusCode: 500, message: 'Internal server error' },
      });
      const rows = await t.tokenRows();
      expect(rows.map((r) => r.digest)).toEqual([digestOf(kept)]);
      expect(
        t.events
          .filter((e) => e.name === KnoxEvents.TOKEN_REVOKED)
          .map((e) => e.payload.reason),
      ).toEqual(['app']);
    }
    fail = {};
    expect((await attempt()).status).toBe(200);
    expect(
      (await t.http.get('/me').set('Authorization', `Token ${kept}`)).status,
    ).toBe(200);
  });

  it('a limit that is not a whole number >= 1 or null is an error, not a 403 or an eviction', async () => {
    const kept = await login(t, 'alice');
    for (const limit of [0, -1, 2.5, Number.NaN, '3', true]) {
      fail = { limit };
      const res = await attempt();
      expect({ limit, status: res.status }).toEqual({ limit, status: 500 });
      expect((await t.tokenRows()).map((r) => r.digest)).toEqual([
        digestOf(kept),
      ]);
    }
    const alice = await t.dataSource
      .getRepository('TestUser')
      .findOneByOrFail({ username: 'alice' });
    await expect(service.create(alice, { limit: 0 })).rejects.toThrow(
      'KnoxTokenService: a token limit must be a whole number >= 1 or null; got 0.',
    );
    await expect(
      service.create(alice, { policy: 'evict-newest' as never }),
    ).rejects.toThrow(/token limit policy must be one of/);
  });

  it('a TTL that puts the expiry past the largest Date is an error naming it, not a 503', async () => {
    for (const ttl of [Number.MAX_SAFE_INTEGER, Number.POSITIVE_INFINITY]) {
      fail = { ttl };
      const res = await attempt();
      expect({ ttl, status: res.status }).toEqual({ ttl, status: 500 });
    }
    expect(await t.tokenRows()).toHaveLength(0);
    const alice = await t.dataSource
      .getRepository('TestUser')
      .findOneByOrFail({ username: 'alice' });
    await expect(
      service.create(alice, { ttl: Number.MAX_SAFE_INTEGER }),
    ).rejects.toThrow(/KnoxTokenService: a token TTL must be/);
  });
});

describe('a user whose row is gone by the time the token is made', () => {
  describe.each([
    ['without a token limit', null],
    ['with a token limit (the row lock finds nothing)', 3],
  ] as const)('%s', (_name, tokenLimitPerUser) => {
    const t: SharedTestApp<void> = useTestApp({
      knox: {
        tokenLimitPerUser,
        // The app checks the password, then the account is deleted before the token is made.
        validateUser: async (username) => {
          const users = t.dataSource.getRepository(TestUser);
          const user = await users.findOneBy({ username });
          if (user) {
            await users.delete({ id: user.id });
          }
          return user;
        },
      },
    });

    it('answers 401 "User inactive or deleted.", not a 503 that invites a retry', async () => {
      await t.createUser('alice');
      const res = await t.http
        .post('/auth/login')
        .send({ username: 'alice', password: 'secret-password' });
      expectUnauthorized(res, MESSAGES.USER_INACTIVE, BASIC_REALM);
      expect(await t.tokenRows()).toHaveLength(0);
      const ghost = { id: 987654, username: 'ghost', isActive: true };
      await expect(
        t.app.get(KnoxTokenService).create(ghost),
      ).rejects.toMatchObject({
        status: 401,
        message: MESSAGES.USER_INACTIVE,
      });
    });
  });
});
