/**
 * Issue 13: token abilities, checked by KnoxGuard with no extra query, chosen at login, kept by
 * rotation, listed; a django-rest-knox row (abilities null) passes every check.
 */
import { describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { Controller, Get, HttpCode, Post, UseGuards } from '@nestjs/common';
import {
  KnoxAbilities,
  KnoxAnyAbility,
  KnoxAuth,
  KnoxEvents,
  KnoxGuard,
  KnoxTokenService,
  type KnoxToken,
} from '../../../lib/index.js';
import type { TestUser } from '../../support/fixtures.js';
import { useTestApp, type TestApp } from '../../support/test-app.js';
import {
  HOUR,
  MINUTE,
  bearer,
  eventsNamed,
  rowOf,
} from '../../support/sessions.js';
import { insertTokenRow } from '../../support/token-rows.js';

@Controller('posts')
@UseGuards(KnoxGuard)
class PostsController {
  constructor(private readonly knox: KnoxTokenService) {}

  @Get()
  @KnoxAbilities('posts:read')
  list() {
    return { did: 'read' };
  }

  @Post()
  @HttpCode(200)
  @KnoxAbilities('posts:write')
  write() {
    return { did: 'write' };
  }

  @Get('both')
  @KnoxAbilities('posts:read', 'comments:read')
  both() {
    return { did: 'both' };
  }

  @Get('moderate')
  @KnoxAnyAbility('posts:admin', 'posts:moderate')
  moderate() {
    return { did: 'moderate' };
  }

  @Get('open')
  open() {
    return { did: 'open' };
  }

  @Get('can')
  can(@KnoxAuth() auth: KnoxToken) {
    return {
      write: auth.can('posts:write'),
      deleteByService: this.knox.can(auth, 'posts:delete'),
      billing: auth.can('billing:read'),
    };
  }
}

/** A controller-level requirement and a route-level one: both apply. */
@Controller('admin')
@UseGuards(KnoxGuard)
@KnoxAbilities('admin')
class AdminController {
  @Get('users')
  @KnoxAbilities('admin:users')
  users() {
    return { did: 'users' };
  }
}

const ROUTES = {
  read: ['get', '/posts'],
  write: ['post', '/posts'],
  both: ['get', '/posts/both'],
  moderate: ['get', '/posts/moderate'],
  open: ['get', '/posts/open'],
  admin: ['get', '/admin/users'],
} as const;

type RouteName = keyof typeof ROUTES;

async function call(t: TestApp, route: RouteName, token: string) {
  const [method, path] = ROUTES[route];
  return t.http[method](path).set('Authorization', bearer(token));
}

/** Which routes answer 200 to the token (the others must answer 403). */
async function allowed(t: TestApp, token: string): Promise<RouteName[]> {
  const granted: RouteName[] = [];
  for (const route of Object.keys(ROUTES) as RouteName[]) {
    const res = await call(t, route, token);
    expect([200, 403]).toContain(res.status);
    if (res.status === 200) {
      granted.push(route);
    }
  }
  return granted;
}

/** A token with these abilities, issued through the service. */
async function tokenWith(
  t: TestApp,
  user: TestUser,
  abilities: string[] | null,
): Promise<string> {
  const issued = await t.app
    .get(KnoxTokenService)
    .create(user, { abilities, name: 'test' });
  return issued.token;
}

describe.each(['express', 'fastify'] as const)('abilities (%s)', (platform) => {
  const t = useTestApp(
    {
      platform,
      controllers: [PostsController, AdminController],
      knox: {
        loginAbilities: ['posts:*', 'comments:read'],
        rotationGracePeriod: MINUTE,
        // A "cli" login gets read-only abilities whatever it asks for.
        getTokenAbilities: ({ body, requestedAbilities }) =>
          body.client === 'cli' ? ['posts:read'] : requestedAbilities,
      },
    },
    async (app) => ({
      alice: await app.createUser('alice'),
    }),
  );

  it('stores the abilities a login asks for, answers the id, lists them and emits them', async () => {
    const res = await t.http.post('/auth/login').send({
      username: 'alice',
      password: 'secret-password',
      abilities: ['posts:read', 'comments:read', 'posts:read'],
    });
    expect(res.status).toBe(200);
    const row = await rowOf(t, res.body.token);
    expect(res.body.id).toBe(row.id);
    expect(row.abilities).toEqual(['posts:read', 'comments:read']);
    const list = await t.http
      .get('/auth/tokens')
      .set('Authorization', bearer(res.body.token));
    expect(list.status).toBe(200);
    expect(list.body).toEqual([
      expect.objectContaining({
        id: row.id,
        abilities: ['posts:read', 'comments:read'],
        current: true,
      }),
    ]);
    expect(eventsNamed(t, KnoxEvents.LOGIN)).toEqual([
      expect.objectContaining({
        tokenId: row.id,
        abilities: ['posts:read', 'comments:read'],
      }),
    ]);

    // Without `abilities` (and no hook decision): every ability, stored as null.
    const all = await t.http
      .post('/auth/login')
      .send({ username: 'alice', password: 'secret-password' });
    expect((await rowOf(t, all.body.token)).abilities).toBeNull();
    // The hook decides over the body.
    const cli = await t.http.post('/auth/login').send({
      username: 'alice',
      password: 'secret-password',
      client: 'cli',
      abilities: ['posts:write'],
    });
    expect(cli.status).toBe(200);
    expect((await rowOf(t, cli.body.token)).abilities).toEqual(['posts:read']);
  });

  it('refuses login abilities beyond `loginAbilities`, or malformed, with 400 and no token', async () => {
    const cases: [unknown, string][] = [
      [
        ['posts:read', 'billing:read'],
        '`abilities` asks for "billing:read", which a login may not ask for.',
      ],
      [['*'], '`abilities` asks for "*", which a login may not ask for.'],
      ['posts:read', '`abilities` must be an array of ability names.'],
      [
        ['posts:read', 'has space'],
        '`abilities`[1] is not an ability name (1 to 100 characters: letters, digits and _ . - / in segments separated by ":", optionally ending in ":*"; or "*" alone).',
      ],
      [
        ['posts:*:read'],
        '`abilities`[0] is not an ability name (1 to 100 characters: letters, digits and _ . - / in segments separated by ":", optionally ending in ":*"; or "*" alone).',
      ],
    ];
    for (const [abilities, message] of cases) {
      const res = await t.http.post('/auth/login').send({
        username: 'alice',
        password: 'secret-password',
        abilities,
      });
      expect({ status: res.status, body: res.body }).toEqual({
        status: 400,
        body: { statusCode: 400, message, error: 'Bad Request' },
      });
    }
    expect(await t.tokenRows()).toEqual([]);
  });

  it('"*", "ns:*" and exact abilities: what each token may reach; null reaches everything', async () => {
    const alice = t.seeded.alice;
    const expectations: [string[] | null, RouteName[]][] = [
      [null, ['read', 'write', 'both', 'moderate', 'open', 'admin']],
      [['*'], ['read', 'write', 'both', 'moderate', 'open', 'admin']],
      [['posts:*'], ['read', 'write', 'moderate', 'open']],
      [
        ['posts:*', 'comments:read'],
        ['read', 'write', 'both', 'moderate', 'open'],
      ],
      [['posts:read'], ['read', 'open']],
      [['posts:moderate'], ['moderate', 'open']],
      [['admin'], ['open']],
      [
        ['admin', 'admin:users'],
        ['open', 'admin'],
      ],
      [['admin:*'], ['open']],
      [
        ['admin', 'admin:*'],
        ['open', 'admin'],
      ],
      [[], ['open']],
      [['POSTS:READ', 'posts'], ['open']],
    ];
    const answers = [];
    for (const [abilities] of expectations) {
      answers.push([
        abilities,
        await allowed(t, await tokenWith(t, alice, abilities)),
      ]);
    }
    expect(answers).toEqual(
      expectations.map(([abilities, routes]) => [
        abilities,
        (Object.keys(ROUTES) as RouteName[]).filter((r) => routes.includes(r)),
      ]),
    );
  });

  it('a missing ability is 403 with insufficient_scope, costing no query beyond the one lookup', async () => {
    const token = await tokenWith(t, t.seeded.alice, ['posts:read']);
    // The first use after issuing is within the interval: no write is due.
    t.recorder.reset();
    const denied = await call(t, 'write', token);
    expect({
      status: denied.status,
      body: denied.body,
      wwwAuthenticate: denied.headers['www-authenticate'],
    }).toEqual({
      status: 403,
      body: {
        statusCode: 403,
        message: 'This token lacks the ability "posts:write" required here.',
        error: 'Forbidden',
      },
      wwwAuthenticate: 'Token error="insufficient_scope", scope="posts:write"',
    });
    expect(t.recorder.statements).toHaveLength(1);
    expect(t.recorder.statements[0]).toMatch(/^SELECT/);

    const both = await call(t, 'both', token);
    expect(both.status).toBe(403);
    expect(both.body.message).toBe(
      'This token lacks the ability "comments:read" required here.',
    );
    expect(both.headers['www-authenticate']).toBe(
      'Token error="insufficient_scope", scope="posts:read comments:read"',
    );
    const any = await call(t, 'moderate', token);
    expect(any.status).toBe(403);
    expect(any.body.message).toBe(
      'This token needs one of the abilities "posts:admin", "posts:moderate" here.',
    );
    expect(any.headers['www-authenticate']).toBe(
      'Token error="insufficient_scope", scope="posts:admin posts:moderate"',
    );

    t.recorder.reset();
    const granted = await call(t, 'read', token);
    expect({ status: granted.status, body: granted.body }).toEqual({
      status: 200,
      body: { did: 'read' },
    });
    expect(granted.headers['www-authenticate']).toBeUndefined();
    expect(t.recorder.statements).toHaveLength(1);
  });

  it('request.auth.can() and KnoxTokenService.can() in code', async () => {
    const scoped = await tokenWith(t, t.seeded.alice, [
      'posts:*',
      'posts:delete',
    ]);
    const res = await t.http
      .get('/posts/can')
      .set('Authorization', bearer(scoped));
    expect(res.body).toEqual({
      write: true,
      deleteByService: true,
      billing: false,
    });
    const knox = t.app.get(KnoxTokenService);
    expect(knox.can(undefined, 'posts:read')).toBe(false);
    expect(knox.can({ abilities: null }, 'anything')).toBe(true);
  });

  it('a row written by django-rest-knox (abilities null) passes every check', async () => {
    const token = randomBytes(32).toString('hex');
    const now = t.clock.now();
    // Django's five columns, nothing else (and the id off PostgreSQL, where it has no default).
    await insertTokenRow(t.dataSource, {
      digest: createHash('sha512').update(token, 'utf8').digest('hex'),
      token_key: token.slice(0, 15),
      user_id: t.seeded.alice.id,
      created: now,
      expiry: new Date(now.getTime() + 10 * HOUR),
    });
    expect((await rowOf(t, token)).abilities).toBeNull();
    expect(await allowed(t, token)).toEqual(Object.keys(ROUTES));
    const can = await t.http
      .get('/posts/can')
      .set('Authorization', bearer(token));
    expect(can.body).toEqual({
      write: true,
      deleteByService: true,
      billing: true,
    });
    const list = await t.http
      .get('/auth/tokens')
      .set('Authorization', bearer(token));
    expect(list.body).toEqual([
      expect.objectContaining({ abilities: null, current: true }),
    ]);
  });

  it('rotation keeps the abilities and answers the new id', async () => {
    const login = await t.http.post('/auth/login').send({
      username: 'alice',
      password: 'secret-password',
      abilities: ['posts:read'],
    });
    const rotated = await t.http
      .post('/auth/rotate')
      .set('Authorization', bearer(login.body.token));
    expect(rotated.status).toBe(200);
    const row = await rowOf(t, rotated.body.token);
    expect(rotated.body.id).toBe(row.id);
    expect(row.id).not.toBe(login.body.id);
    expect(row.abilities).toEqual(['posts:read']);
    expect((await call(t, 'read', rotated.body.token)).status).toBe(200);
    expect((await call(t, 'write', rotated.body.token)).status).toBe(403);
    expect(eventsNamed(t, KnoxEvents.TOKEN_ROTATED)).toEqual([
      expect.objectContaining({
        newTokenId: row.id,
        abilities: ['posts:read'],
      }),
    ]);
  });
});
