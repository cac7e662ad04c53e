/**
 * Issue 13: personal access tokens (`POST /auth/tokens`), renaming (`PATCH /auth/tokens/:id`)
 * and the last-used IP. A token cannot mint tokens: creating one needs the password again
 * (throttled as logins are), or a token that names the `createAbility` the app chose.
 */
import { describe, expect, it } from '@jest/globals';
import { Controller, Get, UseGuards } from '@nestjs/common';
import { KnoxAbilities, KnoxEvents, KnoxGuard } from '../../../lib/index.js';
import {
  EMBEDDED_DB,
  useTestApp,
  type TestApp,
} from '../../support/test-app.js';
import { DAY } from '../../support/http.js';
import {
  HOUR,
  MINUTE,
  SECOND,
  bearer,
  eventsNamed,
  rowOf,
} from '../../support/sessions.js';

@Controller('repo')
@UseGuards(KnoxGuard)
class RepoController {
  @Get()
  @KnoxAbilities('repo:read')
  read() {
    return { did: 'read' };
  }

  @Get('write')
  @KnoxAbilities('repo:write')
  write() {
    return { did: 'write' };
  }
}

const PASSWORD = 'secret-password';

async function loginAs(
  t: TestApp,
  abilities?: string[],
  ip = '198.51.100.1',
): Promise<{ token: string; id: string }> {
  const res = await t.http
    .post('/auth/login')
    .set('X-Forwarded-For', ip)
    .send({ username: 'alice', password: PASSWORD, abilities });
  expect(res.status).toBe(200);
  return res.body;
}

function createToken(t: TestApp, token: string, body: unknown) {
  return t.http
    .post('/auth/tokens')
    .set('Authorization', bearer(token))
    .send(body as object);
}

function expectError(
  res: { status: number; body: unknown },
  status: number,
  message: string,
) {
  const error = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden' }[
    status
  ];
  expect({ status: res.status, body: res.body }).toEqual({
    status,
    body: { statusCode: status, message, error },
  });
}

describe.each(['express', 'fastify'] as const)(
  'personal access tokens (%s)',
  (platform) => {
    const t = useTestApp(
      {
        platform,
        trustProxy: true,
        controllers: [RepoController],
        knox: {
          loginAbilities: ['*'],
          rotationGracePeriod: MINUTE,
          personalAccessTokens: { maxTtl: 90 * DAY },
        },
      },
      async (app) => ({
        alice: await app.createUser('alice'),
        bob: await app.createUser('bob'),
      }),
    );

    it('creates a named token with the password: 201, shown once, no-store; it carries its abilities', async () => {
      const session = await loginAs(t);
      const res = await createToken(t, session.token, {
        name: 'CI deploy key',
        abilities: ['repo:read'],
        password: PASSWORD,
      });
      expect(res.status).toBe(201);
      expect(res.headers['cache-control']).toBe('no-store');
      const row = await rowOf(t, res.body.token);
      expect(res.body).toEqual({
        id: row.id,
        token: expect.stringMatching(/^[0-9a-f]{64}$/),
        expiry: new Date(t.clock.now().getTime() + 90 * DAY).toISOString(),
        abilities: ['repo:read'],
        name: 'CI deploy key',
      });
      expect(row).toMatchObject({
        name: 'CI deploy key',
        abilities: ['repo:read'],
        user_id: t.seeded.alice.id,
      });
      const read = await t.http
        .get('/repo')
        .set('Authorization', bearer(res.body.token));
      expect(read.status).toBe(200);
      const write = await t.http
        .get('/repo/write')
        .set('Authorization', bearer(res.body.token));
      expect(write.status).toBe(403);
      expect(eventsNamed(t, KnoxEvents.TOKEN_CREATED).at(-1)).toMatchObject({
        tokenId: row.id,
        name: 'CI deploy key',
        abilities: ['repo:read'],
        source: 'personal-access-token',
      });
      // Creating a token is not a login: only the session's own login was one.
      expect(eventsNamed(t, KnoxEvents.LOGIN)).toHaveLength(1);
      expect(JSON.stringify(t.events)).not.toContain(res.body.token);

      // A chosen TTL; listed among the user's sessions.
      const short = await createToken(t, session.token, {
        name: 'laptop cli',
        abilities: [],
        password: PASSWORD,
        ttl: 7 * DAY,
      });
      expect(short.status).toBe(201);
      expect(short.body.expiry).toBe(
        new Date(t.clock.now().getTime() + 7 * DAY).toISOString(),
      );
      const list = await t.http
        .get('/auth/tokens')
        .set('Authorization', bearer(session.token));
      expect(
        (list.body as { name: string; abilities: unknown }[]).map((s) => [
          s.name,
          s.abilities,
        ]),
      ).toEqual(
        expect.arrayContaining([
          ['CI deploy key', ['repo:read']],
          ['laptop cli', []],
          [null, null],
        ]),
      );
    });

    it('is refused without the password, with a wrong one, or with another user’s', async () => {
      const session = await loginAs(t);
      const body = { name: 'key', abilities: ['repo:read'] };
      expectError(
        await createToken(t, session.token, body),
        400,
        '`password` is required: creating a token needs the account password again.',
      );
      expectError(
        await createToken(t, session.token, { ...body, password: 'wrong' }),
        403,
        'The password is incorrect.',
      );
      // Bob's password is no re-authentication of Alice.
      await t.dataSource.query(
        `UPDATE knox_test_user SET password = 'bobs-password' WHERE username = 'bob'`,
      );
      expectError(
        await createToken(t, session.token, {
          ...body,
          password: 'bobs-password',
        }),
        403,
        'The password is incorrect.',
      );
      expect(await t.tokenRows()).toHaveLength(1);
      // A 403 here is not a bad token: the session still works.
      expect(
        (
          await t.http
            .get('/auth/tokens')
            .set('Authorization', bearer(session.token))
        ).status,
      ).toBe(200);
    });

    it('is refused for abilities beyond the calling token’s', async () => {
      const scoped = await loginAs(t, ['repo:read', 'issues:*']);
      expectError(
        await createToken(t, scoped.token, {
          name: 'key',
          abilities: ['repo:read', 'repo:write', '*'],
          password: PASSWORD,
        }),
        403,
        'A token can only be given abilities the token creating it holds; this one lacks "repo:write", "*".',
      );
      expectError(
        await createToken(t, scoped.token, {
          name: 'key',
          abilities: ['issues:write', 'issues:*', 'repo:*'],
          password: PASSWORD,
        }),
        403,
        'A token can only be given abilities the token creating it holds; this one lacks "repo:*".',
      );
      const subset = await createToken(t, scoped.token, {
        name: 'key',
        abilities: ['issues:write', 'issues:*', 'repo:read'],
        password: PASSWORD,
      });
      expect(subset.status).toBe(201);
      expect(await t.tokenRows()).toHaveLength(2);
    });

    it('validates the body: 400 naming the field, TTL capped by maxTtl', async () => {
      const session = await loginAs(t);
      const ok = { name: 'key', abilities: ['repo:read'], password: PASSWORD };
      const cases: [unknown, string][] = [
        [
          { ...ok, name: undefined },
          '`name` is required: a string of 1 to 100 printable characters that says what the token is for.',
        ],
        [
          { ...ok, abilities: undefined },
          '`abilities` is required: the list of what the token may do (e.g. ["posts:read"]).',
        ],
        [
          { ...ok, abilities: 'repo:read' },
          '`abilities` must be an array of ability names.',
        ],
        [
          { ...ok, ttl: 91 * DAY },
          '`ttl` must be a whole number of milliseconds >= 1 (at most 7776000000, the longest allowed here).',
        ],
        [
          { ...ok, ttl: '3600000' },
          '`ttl` must be a whole number of milliseconds >= 1 (at most 7776000000, the longest allowed here).',
        ],
        [
          { ...ok, ttl: null },
          '`ttl` must be a number of milliseconds (at most 7776000000, the longest allowed here); tokens that never expire are not allowed here.',
        ],
        [
          { ...ok, password: 42 },
          '`password` must be a string of 1 to 1024 characters without NUL.',
        ],
        [[ok], 'The request body must be a JSON object.'],
      ];
      for (const [body, message] of cases) {
        expectError(await createToken(t, session.token, body), 400, message);
      }
      expect(await t.tokenRows()).toHaveLength(1);
    });

    it('a token retired by a rotation cannot create or rename tokens', async () => {
      const session = await loginAs(t);
      const rotated = await t.http
        .post('/auth/rotate')
        .set('Authorization', bearer(session.token));
      expect(rotated.status).toBe(200);
      const create = await createToken(t, session.token, {
        name: 'key',
        abilities: [],
        password: PASSWORD,
      });
      expectError(create, 401, 'Invalid token.');
      expect(create.headers['www-authenticate']).toBe('Token');
      const rename = await t.http
        .patch(`/auth/tokens/${rotated.body.id}`)
        .set('Authorization', bearer(session.token))
        .send({ name: 'mine now' });
      expectError(rename, 401, 'Invalid token.');
      expect((await rowOf(t, rotated.body.token)).name).toBeNull();
      expect(await t.tokenRows()).toHaveLength(2);
    });

    it('PATCH /auth/tokens/:id renames one of the caller’s tokens, with the login name rules', async () => {
      const phone = await loginAs(t);
      const laptop = await loginAs(t);
      const res = await t.http
        .patch(`/auth/tokens/${laptop.id}`)
        .set('Authorization', bearer(phone.token))
        .send({ name: '  work laptop ' });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        id: laptop.id,
        name: 'work laptop',
        current: false,
        abilities: null,
      });
      expect((await rowOf(t, laptop.token)).name).toBe('work laptop');
      const cleared = await t.http
        .patch(`/auth/tokens/${laptop.id}`)
        .set('Authorization', bearer(phone.token))
        .send({ name: null });
      expect(cleared.body.name).toBeNull();

      for (const [body, message] of [
        [{}, '`name` is required (a string, or null to clear the name).'],
        [
          { name: 'a\u202eb' },
          '`name` must be a string of 1 to 100 printable characters.',
        ],
        [
          { name: 'x'.repeat(101) },
          '`name` must be a string of 1 to 100 printable characters.',
        ],
      ] as const) {
        expectError(
          await t.http
            .patch(`/auth/tokens/${laptop.id}`)
            .set('Authorization', bearer(phone.token))
            .send(body),
          400,
          message,
        );
      }
      // Bob's token, an unknown id and a malformed one: 404 alike.
      const bobs = await t.http
        .post('/auth/login')
        .send({ username: 'bob', password: PASSWORD });
      for (const id of [
        bobs.body.id,
        '00000000-0000-4000-8000-000000000000',
        'nope',
      ]) {
        const other = await t.http
          .patch(`/auth/tokens/${id}`)
          .set('Authorization', bearer(phone.token))
          .send({ name: 'stolen' });
        expect({ status: other.status, message: other.body.message }).toEqual({
          status: 404,
          message: 'Token not found.',
        });
      }
      expect((await rowOf(t, bobs.body.token)).name).toBeNull();
    });

    it('records the last-used IP with lastUsedAt: same write, same interval, and lists it', async () => {
      const { token } = await loginAs(t, undefined, '198.51.100.1');
      expect(await rowOf(t, token)).toMatchObject({
        ip: '198.51.100.1',
        last_used_ip: '198.51.100.1',
      });
      const use = (ip: string) =>
        t.http
          .get('/auth/tokens')
          .set('X-Forwarded-For', ip)
          .set('Authorization', bearer(token));

      // Within the interval (a minute): a use from elsewhere writes nothing.
      t.clock.advance(30 * SECOND);
      t.recorder.reset();
      let res = await use('203.0.113.9');
      expect(t.recorder.writes).toEqual([]);
      expect(res.body[0]).toMatchObject({
        ip: '198.51.100.1',
        lastUsedIp: '198.51.100.1',
      });

      // Past it: one UPDATE writes both.
      t.clock.advance(31 * SECOND);
      t.recorder.reset();
      res = await use('203.0.113.9');
      expect(t.recorder.writes).toHaveLength(1);
      expect(t.recorder.writes[0]).toMatch(
        // Quoted on PostgreSQL, bare on MySQL/MariaDB and SQLite.
        /(SET|,) "?last_used_at"? = .*, "?last_used_ip"? = /,
      );
      expect(res.body[0]).toMatchObject({
        ip: '198.51.100.1',
        lastUsedIp: '203.0.113.9',
        lastUsedAt: t.clock.now().toISOString(),
      });
      expect(await rowOf(t, token)).toMatchObject({
        ip: '198.51.100.1',
        last_used_ip: '203.0.113.9',
      });
      // And once more only after another interval.
      t.clock.advance(HOUR / 2);
      t.recorder.reset();
      await use('192.0.2.77');
      expect(t.recorder.writes).toHaveLength(1);
      expect((await rowOf(t, token)).last_used_ip).toBe('192.0.2.77');
    });
  },
);

describe('personal access tokens: createAbility, throttling, turned off', () => {
  describe('with createAbility', () => {
    const t = useTestApp(
      {
        controllers: [RepoController],
        knox: {
          loginAbilities: ['*'],
          personalAccessTokens: {
            createAbility: 'tokens:create',
            maxTtl: null,
          },
        },
      },
      async (app) => ({ alice: await app.createUser('alice') }),
    );

    it('a token naming createAbility creates tokens without the password; "*", "tokens:*" and null do not', async () => {
      const minter = await loginAs(t, ['tokens:create', 'repo:read']);
      const res = await createToken(t, minter.token, {
        name: 'ci',
        abilities: ['repo:read'],
      });
      expect(res.status).toBe(201);
      // maxTtl null and no ttl, but minted without the password: it lives no longer than the
      // token that minted it (issue 23 item 3), the login's 10 hours.
      expect(res.body.expiry).toBe(
        new Date(t.clock.now().getTime() + 10 * HOUR).toISOString(),
      );
      for (const abilities of [['*'], ['tokens:*'], undefined]) {
        const other = await loginAs(t, abilities);
        expectError(
          await createToken(t, other.token, { name: 'ci', abilities: [] }),
          400,
          '`password` is required: creating a token needs the account password again.',
        );
      }
    });
  });

  describe('with a login throttle', () => {
    const t = useTestApp(
      {
        knox: { loginThrottle: { limitPerUsername: 3, limitPerIp: 100 } },
      },
      async (app) => ({ alice: await app.createUser('alice') }),
    );

    it('re-authentication is throttled as logins are, sharing their counters', async () => {
      const session = await loginAs(t);
      const body = { name: 'key', abilities: [], password: 'wrong' };
      // The login above counted once for alice: two more attempts reach the limit of 3.
      for (let i = 0; i < 2; i++) {
        expect((await createToken(t, session.token, body)).status).toBe(403);
      }
      const throttled = await createToken(t, session.token, {
        ...body,
        password: PASSWORD,
      });
      expect(throttled.status).toBe(429);
      expect(Number(throttled.headers['retry-after'])).toBeGreaterThan(0);
      const login = await t.http
        .post('/auth/login')
        .send({ username: 'alice', password: PASSWORD });
      expect(login.status).toBe(429);
      expect(await t.tokenRows()).toHaveLength(1);
    });
  });

  describe('personalAccessTokens: false', () => {
    const t = useTestApp(
      { knox: { personalAccessTokens: false } },
      async (app) => ({ alice: await app.createUser('alice') }),
    );

    it('POST /auth/tokens answers 405 with Allow: GET', async () => {
      const { token } = await loginAs(t);
      const res = await createToken(t, token, {
        name: 'key',
        abilities: [],
        password: PASSWORD,
      });
      expect(res.status).toBe(405);
      expect(res.headers.allow).toBe('GET');
      expect(await t.tokenRows()).toHaveLength(1);
    });
  });
});

const onServer = EMBEDDED_DB ? describe.skip : describe;
const TRIALS = 20;

onServer('POST /auth/tokens racing logoutall (real concurrency)', () => {
  const t = useTestApp({}, async (app) => ({
    alice: await app.createUser('alice'),
  }));

  it(`never leaves a live token behind, in ${TRIALS} of ${TRIALS} trials`, async () => {
    for (let trial = 0; trial < TRIALS; trial += 1) {
      await t.reset();
      await t.createUser('alice');
      const owner = (await loginAs(t)).token;
      const stolen = (await loginAs(t)).token;
      const [logoutAll, created] = await Promise.all([
        t.http.post('/auth/logoutall').set('Authorization', bearer(owner)),
        createToken(t, stolen, {
          name: 'persistence',
          abilities: [],
          password: PASSWORD,
        }),
      ]);
      expect(logoutAll.status).toBe(204);
      // Either created before logoutall took the lock (then revoked by it), or refused after.
      expect([201, 401]).toContain(created.status);
      expect(await t.tokenRows()).toEqual([]);
    }
  });
});
