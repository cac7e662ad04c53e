import { beforeEach, describe, expect, it } from '@jest/globals';
import { Controller, Get, Module, UseGuards } from '@nestjs/common';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import {
  KnoxAuth,
  KnoxController,
  KnoxGuard,
  KnoxModule,
  KnoxOptionsError,
  KnoxTokenService,
  KnoxUser,
  type KnoxToken,
} from '../../../lib/index.js';
import { TestUser } from '../../support/fixtures.js';
import { PLATFORMS } from '../../support/platforms.js';
import { createTestApp, login, useTestApp } from '../../support/test-app.js';
import { HOUR, MESSAGES, expectUnauthorized } from '../../support/http.js';
import { TEST_DB, testConnectionOptions } from '../../support/test-db.js';

const credentials = { username: 'alice', password: 'secret-password' };

/** Returns what the parameter decorators give a handler. */
@Controller('whoami')
@UseGuards(KnoxGuard)
class WhoAmIController {
  @Get()
  whoami(@KnoxUser() user: TestUser, @KnoxAuth() auth: KnoxToken) {
    return {
      userIsEntity: user instanceof TestUser,
      username: user.username,
      auth,
      expiry: auth.expiry,
    };
  }
}

describe.each(PLATFORMS)('path (%s)', (platform) => {
  const t = useTestApp({ platform, extras: { path: 'api/v1/knox' } }, (app) =>
    app.createUser('alice'),
  );

  it('mounts login, logout and logoutall under the configured path', async () => {
    const res = await t.http.post('/api/v1/knox/login').send(credentials);
    expect(res.status).toBe(200);
    const token = res.body.token as string;
    expect((await t.http.post('/auth/login').send(credentials)).status).toBe(
      404,
    );
    const out = await t.http
      .post('/api/v1/knox/logout')
      .set('Authorization', `Token ${token}`);
    expect(out.status).toBe(204);
    expect(await t.tokenRows()).toHaveLength(0);
    await t.http.post('/api/v1/knox/login').send(credentials);
    const all = await t.http
      .post('/api/v1/knox/logoutall')
      .set(
        'Authorization',
        `Token ${(await t.http.post('/api/v1/knox/login').send(credentials)).body.token}`,
      );
    expect(all.status).toBe(204);
    expect(await t.tokenRows()).toHaveLength(0);
  });
});

describe.each(PLATFORMS)('controller: false (%s)', (platform) => {
  const t = useTestApp({ platform, extras: { controller: false } });

  it('mounts no routes; the guard and the service still work', async () => {
    for (const path of ['/auth/login', '/auth/logout', '/auth/logoutall']) {
      expect((await t.http.post(path).send(credentials)).status).toBe(404);
    }
    const alice = await t.createUser('alice');
    const { token } = await t.app.get(KnoxTokenService).create(alice);
    const me = await t.http.get('/me').set('Authorization', `Token ${token}`);
    expect(me.status).toBe(200);
    expect(me.body.username).toBe('alice');
  });
});

/** An app's own mount of the exported controller (with `controller: false`). */
@Controller('account/session')
class AppKnoxController extends KnoxController {}

describe.each(PLATFORMS)(
  'controller: false, and the exported KnoxController mounted by the app (%s)',
  (platform) => {
    const t = useTestApp(
      {
        platform,
        extras: { controller: false },
        controllers: [AppKnoxController],
        knox: { loginThrottle: { limitPerUsername: 2 } },
      },
      (app) => app.createUser('alice'),
    );

    it('resolves its dependencies and serves login and logout at its own path', async () => {
      const res = await t.http.post('/account/session/login').send(credentials);
      expect(res.status).toBe(200);
      const out = await t.http
        .post('/account/session/logout')
        .set('Authorization', `Token ${res.body.token}`);
      expect(out.status).toBe(204);
      expect((await t.http.post('/auth/login').send(credentials)).status).toBe(
        404,
      );
    });
  },
);

/** A second, named data source; only it knows the token entity. */
@Module({
  imports: [
    TypeOrmModule.forRoot({
      name: 'auth',
      // This run's database (the same one as the default data source's).
      ...(testConnectionOptions() as { type: 'postgres' }),
      entities: [TestUser],
      autoLoadEntities: true,
      synchronize: true,
      retryAttempts: 0,
    }),
  ],
})
class AuthDataSourceModule {}

describe("extras.dataSource: a named data source, for every query, the limit's lock and rotate", () => {
  const t = useTestApp(
    {
      async: true,
      extras: { dataSource: 'auth' },
      imports: [AuthDataSourceModule],
      knox: { tokenLimitPerUser: 2, rotationGracePeriod: 1000 },
    },
    (app) => app.createUser('alice'),
  );

  it('logs in up to the limit, authenticates, lists, rotates and logs out', async () => {
    const auth = t.app.get<DataSource>(getDataSourceToken('auth'));
    expect(auth).not.toBe(t.dataSource);
    t.recorder.reset();
    const first = await login(t, 'alice');
    await login(t, 'alice');
    expect((await t.http.post('/auth/login').send(credentials)).status).toBe(
      403,
    );
    const bearer = { Authorization: `Token ${first}` };
    expect((await t.http.get('/me').set(bearer)).status).toBe(200);
    expect((await t.http.get('/auth/tokens').set(bearer)).body).toHaveLength(2);
    const rotated = await t.http.post('/auth/rotate').set(bearer);
    expect(rotated.status).toBe(200);
    const out = await t.http
      .post('/auth/logoutall')
      .set('Authorization', `Token ${rotated.body.token}`);
    expect(out.status).toBe(204);
    // The default data source (whose queries the recorder logs) only ever saw the users.
    expect(t.recorder.statements.length).toBeGreaterThan(0);
    expect(
      t.recorder.statements.filter((sql) => sql.includes('knox_authtoken')),
    ).toEqual([]);
    expect(await t.tokenRows()).toHaveLength(0);
  });
});

describe.each([
  ['useFactory', true],
  ['useClass', 'useClass'],
  ['useExisting', 'useExisting'],
] as const)('forRootAsync with %s', (_name, mode) => {
  const t = useTestApp(
    { async: mode, knox: { tokenTtl: 2 * HOUR, tokenPrefix: 'async_' } },
    (app) => app.createUser('alice'),
  );

  it('takes the options from the factory and serves login and the guard', async () => {
    const res = await t.http.post('/auth/login').send(credentials);
    expect(res.status).toBe(200);
    expect(res.body.token).toMatch(/^async_[0-9a-f]{64}$/);
    expect(res.body.expiry).toBe(
      new Date(t.clock.now().getTime() + 2 * HOUR).toISOString(),
    );
    const me = await t.http
      .get('/me')
      .set('Authorization', `Token ${res.body.token}`);
    expect(me.status).toBe(200);
  });
});

describe.each(PLATFORMS)(
  'KnoxGuard as APP_GUARD with KnoxPublic (%s)',
  (platform) => {
    const t = useTestApp({ platform, globalGuard: true }, async (app) => {
      await app.createUser('alice');
      return { token: await login(app, 'alice') };
    });
    let token: string;
    beforeEach(() => {
      token = t.seeded.token;
    });

    it('guards every route: 401 with WWW-Authenticate without a token', async () => {
      expectUnauthorized(await t.http.get('/global'), MESSAGES.NOT_PROVIDED);
      expectUnauthorized(
        await t.http.get('/global').set('Authorization', 'Token nope'),
        MESSAGES.INVALID_TOKEN,
      );
    });

    it('lets a token through and puts the user on the request', async () => {
      const res = await t.http
        .get('/global')
        .set('Authorization', `Token ${token}`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ username: 'alice' });
    });

    it('lets @KnoxPublic() routes through without a token, login included', async () => {
      const res = await t.http.get('/public');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ ok: true });
      expect((await t.http.post('/auth/login').send(credentials)).status).toBe(
        200,
      );
    });

    it('a route with its own @UseGuards(KnoxGuard) too is authenticated once: one query', async () => {
      await t.http.get('/me').set('Authorization', `Token ${token}`);
      t.recorder.reset();
      const res = await t.http
        .get('/me')
        .set('Authorization', `Token ${token}`);
      expect(res.status).toBe(200);
      expect(res.body.username).toBe('alice');
      expect(t.recorder.statements).toHaveLength(1);
    });

    it('still guards logout and logoutall: one SELECT, then the DELETE under the user lock', async () => {
      expectUnauthorized(
        await t.http.post('/auth/logout'),
        MESSAGES.NOT_PROVIDED,
      );
      const other = await login(t, 'alice');
      t.recorder.reset();
      const res = await t.http
        .post('/auth/logout')
        .set('Authorization', `Token ${other}`);
      expect(res.status).toBe(204);
      // The guard's SELECT, then the revocation in its READ COMMITTED transaction: the user's
      // lock, then the DELETE. The lock is PostgreSQL's advisory lock; on MySQL/MariaDB the
      // user's row FOR UPDATE, and the rows to delete read FOR UPDATE (no DELETE … RETURNING);
      // on SQLite the database's write lock, BEGIN IMMEDIATE (docs/database.md).
      const statements = t.recorder.statements;
      const verbs = statements.map((sql) => sql.split(' ')[0]);
      if (TEST_DB === 'sqlite') {
        expect(verbs).toEqual(['SELECT', 'DELETE']);
        const sent = t.recorder.queries.map((q) => q.sql);
        expect(sent.slice(sent.indexOf(statements[0]) + 1)).toEqual([
          'BEGIN IMMEDIATE',
          statements[1],
          'COMMIT',
        ]);
        return;
      }
      expect(statements[1]).toMatch(/ISOLATION LEVEL READ COMMITTED/);
      if (TEST_DB === 'mariadb') {
        expect(verbs).toEqual(['SELECT', 'SET', 'SELECT', 'SELECT', 'DELETE']);
        expect(statements[2]).toMatch(
          /^SELECT 1 FROM `knox_test_user` WHERE `id` = \? FOR UPDATE$/,
        );
        expect(statements[3]).toMatch(/FROM `knox_authtoken` .* FOR UPDATE$/);
        return;
      }
      expect(verbs).toEqual(['SELECT', 'SET', 'SELECT', 'DELETE']);
      expect(statements[2]).toMatch(/pg_advisory_xact_lock/);
    });
  },
);

describe('KnoxUser and KnoxAuth', () => {
  const t = useTestApp({ controllers: [WhoAmIController] }, (app) =>
    app.createUser('alice'),
  );

  it('give the handler the user entity and the token record, without its digest', async () => {
    const token = await login(t, 'alice', 'secret-password', {
      name: 'laptop',
    });
    const [row] = await t.tokenRows();
    const res = await t.http
      .get('/whoami')
      .set('Authorization', `Token ${token}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      userIsEntity: true,
      username: 'alice',
      expiry: row.expiry.toISOString(),
      auth: { id: row.id, tokenKey: token.slice(0, 15), name: 'laptop' },
    });
    expect(res.body.auth).not.toHaveProperty('digest');
    expect(res.text).not.toContain(row.digest);
    expect(res.text).not.toContain(token);

    const me = await t.http.get('/me').set('Authorization', `Token ${token}`);
    expect(me.body).toEqual({
      id: row.user_id,
      username: 'alice',
      tokenId: row.id,
    });
  });
});

describe('without EventEmitterModule', () => {
  const t = useTestApp({ events: false, knox: { autoRefresh: true } }, (app) =>
    app.createUser('alice'),
  );

  it('logs in, authenticates, refreshes, expires and logs out with no event emitter', async () => {
    const token = await login(t, 'alice');
    const me = () => t.http.get('/me').set('Authorization', `Token ${token}`);
    t.clock.advance(HOUR);
    expect((await me()).status).toBe(200);
    const [refreshed] = await t.tokenRows();
    expect(refreshed.expiry.getTime()).toBe(
      t.clock.now().getTime() + 10 * HOUR,
    );
    t.clock.advance(10 * HOUR + 1);
    expectUnauthorized(await me(), MESSAGES.INVALID_TOKEN);
    const other = await login(t, 'alice');
    await login(t, 'alice');
    const all = await t.http
      .post('/auth/logoutall')
      .set('Authorization', `Token ${other}`);
    expect(all.status).toBe(204);
    expect(await t.tokenRows()).toHaveLength(0);
  });
});

describe('bad options fail at boot with a message saying what to fix', () => {
  it('an 11-character token prefix', async () => {
    await expect(
      createTestApp({ knox: { tokenPrefix: 'TEST_TOKEN_' } }),
    ).rejects.toThrow(
      "KnoxModule: `tokenPrefix` must be at most 10 characters; 'TEST_TOKEN_' has 11.",
    );
  });

  it('a negative tokenTtl', async () => {
    await expect(createTestApp({ knox: { tokenTtl: -1 } })).rejects.toThrow(
      'KnoxModule: `tokenTtl` must be a duration in milliseconds (a finite number >= 0) or null; got -1.',
    );
  });

  it('a missing validateUser, also through forRootAsync', async () => {
    const message =
      'KnoxModule: `validateUser(username, password, request)` is required';
    await expect(
      createTestApp({ knox: { validateUser: undefined } }),
    ).rejects.toThrow(message);
    await expect(
      createTestApp({ async: true, knox: { validateUser: undefined } }),
    ).rejects.toThrow(message);
  });

  it('a missing userEntity', () => {
    expect(() =>
      KnoxModule.forRoot({ validateUser: () => null } as never),
    ).toThrow(KnoxOptionsError);
    expect(() =>
      KnoxModule.forRoot({ validateUser: () => null } as never),
    ).toThrow(/`userEntity` is required: pass your TypeORM user entity class/);
  });

  it('a bad path', () => {
    expect(() =>
      KnoxModule.forRoot({
        userEntity: TestUser,
        path: 'my auth',
        validateUser: () => null,
      }),
    ).toThrow(/`path` must be a route path without spaces/);
  });
});

describe.each(PLATFORMS)('the routes table (%s)', (platform) => {
  it("lists the module's real routes only; wrong methods still get 405, CORS preflights pass", async () => {
    const mapped: string[] = [];
    const t = await createTestApp({
      platform,
      configureApp: (app) => {
        app.useLogger({
          log: (message: unknown) => {
            const route = /^Mapped \{(\/auth[^,]*), (\w+)\}/.exec(
              String(message),
            );
            if (route) {
              mapped.push(`${route[2]} ${route[1]}`);
            }
          },
          error: () => undefined,
          warn: () => undefined,
        });
        app.enableCors({ origin: 'https://front.example' });
      },
    });
    try {
      expect(mapped.sort()).toEqual(
        [
          'POST /auth/login',
          'POST /auth/logout',
          'POST /auth/logoutall',
          'POST /auth/logoutothers',
          'POST /auth/refresh',
          'POST /auth/rotate',
          'GET /auth/tokens',
          'POST /auth/tokens',
          'PATCH /auth/tokens/:id',
          'DELETE /auth/tokens/:id',
        ].sort(),
      );
      await t.createUser('alice');
      const token = await login(t, 'alice');
      for (const [method, path, allow] of [
        ['get', '/auth/login', 'POST'],
        ['put', '/auth/tokens', 'GET, POST'],
        ['post', '/auth/tokens/some-id', 'PATCH, DELETE'],
        ['delete', '/auth/rotate/', 'POST'],
      ] as const) {
        expectUnauthorized(await t.http[method](path), MESSAGES.NOT_PROVIDED);
        const res = await t.http[method](path).set(
          'Authorization',
          `Token ${token}`,
        );
        expect(res.status).toBe(405);
        expect(res.headers.allow).toBe(allow);
        expect(res.body).toEqual({
          statusCode: 405,
          message: `Method "${method.toUpperCase()}" not allowed.`,
          error: 'Method Not Allowed',
        });
      }
      const preflight = await t.http
        .options('/auth/login')
        .set('Origin', 'https://front.example')
        .set('Access-Control-Request-Method', 'POST');
      expect(preflight.status).toBe(204);
      expect(preflight.headers['access-control-allow-origin']).toBe(
        'https://front.example',
      );
    } finally {
      await t.close();
    }
  });
});
