/**
 * Issue 4, events: token refreshed, token rotated, and token revoked with each reason (logout,
 * logout-all, logout-others, revoked-by-id, evicted, rotated, app), with payloads carrying who
 * and where, and never a plaintext token. Without EventEmitterModule everything still works.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  KnoxEvents,
  KnoxTokenService,
  type KnoxRevokeReason,
} from '../../../lib/index.js';
import { PLATFORMS } from '../../support/platforms.js';
import {
  createTestApp,
  login,
  useTestApp,
  type TestApp,
} from '../../support/test-app.js';
import {
  HOUR,
  MINUTE,
  bearer,
  digestOf,
  eventsNamed,
} from '../../support/sessions.js';
import { sql } from '../../support/test-db.js';

const UA = 'EventsTest/1.0';

describe.each(PLATFORMS)('session events (%s)', (platform) => {
  // Booted by hand, not with useTestApp: the tests follow one user's sessions in order (the
  // clock, the rows and every plaintext handed out carry over), and the last test searches
  // all the events of the describe for those plaintexts.
  let t: TestApp;
  let aliceId: number;
  const plaintexts: string[] = [];
  beforeAll(async () => {
    t = await createTestApp({
      platform,
      knox: {
        tokenLimitPerUser: 3,
        tokenLimitPolicy: 'evict-oldest',
        autoRefresh: true,
      },
      trustProxy: true,
    });
    aliceId = (await t.createUser('alice')).id;
  });
  afterAll(() => t.close());

  async function signIn(): Promise<string> {
    t.clock.advance(1000);
    const res = await t.http
      .post('/auth/login')
      .set('User-Agent', UA)
      .set('X-Forwarded-For', '203.0.113.50')
      .send({ username: 'alice', password: 'secret-password', name: 'device' });
    expect(res.status).toBe(200);
    plaintexts.push(res.body.token);
    return res.body.token;
  }
  const call = (
    method: 'get' | 'post' | 'delete',
    path: string,
    token: string,
  ) =>
    t.http[method](path)
      .set('Authorization', bearer(token))
      .set('User-Agent', UA)
      .set('X-Forwarded-For', '203.0.113.50');
  const idOf = async (token: string): Promise<string> =>
    (
      await t.dataSource.query(
        sql(`SELECT id FROM knox_authtoken WHERE digest = $1`),
        [digestOf(token)],
      )
    )[0].id;

  it('emits every kind of event with its reason, and no plaintext anywhere', async () => {
    const knox = t.app.get(KnoxTokenService);
    const a = await signIn();
    const b = await signIn();
    const c = await signIn();
    const aId = await idOf(a);
    const bId = await idOf(b);
    const cId = await idOf(c);
    const expectedReasons = new Map<string, KnoxRevokeReason>();

    // evicted: a fourth login evicts the oldest (a).
    const d = await signIn();
    expectedReasons.set(aId, 'evicted');

    // revoked-by-id: d revokes b.
    expect((await call('delete', `/auth/tokens/${bId}`, d)).status).toBe(204);
    expectedReasons.set(bId, 'revoked-by-id');

    // refreshed (auto refresh, by using c two hours later) and explicitly.
    t.clock.advance(2 * HOUR);
    const firstUse = t.clock.now().getTime();
    expect((await call('get', '/me', c)).status).toBe(200);
    t.clock.advance(2 * MINUTE);
    const refreshAt = t.clock.now().getTime();
    expect((await call('post', '/auth/refresh', c)).status).toBe(200);

    // rotated: c is rotated into c2.
    const rotated = await call('post', '/auth/rotate', c);
    expect(rotated.status).toBe(200);
    const c2: string = rotated.body.token;
    plaintexts.push(c2);
    expectedReasons.set(cId, 'rotated');

    // logout-others: e logs out d and c2.
    const e = await signIn();
    const dId = await idOf(d);
    const c2Id = await idOf(c2);
    expect((await call('post', '/auth/logoutothers', e)).status).toBe(204);
    expectedReasons.set(dId, 'logout-others');
    expectedReasons.set(c2Id, 'logout-others');

    // logout: e logs itself out.
    const eId = await idOf(e);
    expect((await call('post', '/auth/logout', e)).status).toBe(204);
    expectedReasons.set(eId, 'logout');

    // logout-all: f and g, all at once.
    const f = await signIn();
    const g = await signIn();
    const fId = await idOf(f);
    const gId = await idOf(g);
    expect((await call('post', '/auth/logoutall', f)).status).toBe(204);
    expectedReasons.set(fId, 'logout-all');
    expectedReasons.set(gId, 'logout-all');

    // app: the server revokes h.
    const h = await signIn();
    const hId = await idOf(h);
    expect(
      await knox.revokeAll(aliceId, { ip: '10.0.0.1', userAgent: 'admin' }),
    ).toBe(1);
    expectedReasons.set(hId, 'app');

    expect(await t.tokenRows()).toHaveLength(0);

    const revoked = eventsNamed(t, KnoxEvents.TOKEN_REVOKED);
    expect(new Map(revoked.map((p) => [p.tokenId, p.reason]))).toEqual(
      expectedReasons,
    );
    expect(revoked).toHaveLength(expectedReasons.size);
    expect(new Set(revoked.map((p) => p.reason))).toEqual(
      new Set([
        'evicted',
        'revoked-by-id',
        'rotated',
        'logout-others',
        'logout',
        'logout-all',
        'app',
      ]),
    );
    for (const p of revoked) {
      expect(Object.keys(p).sort()).toEqual(
        ['userId', 'tokenId', 'tokenKey', 'ip', 'userAgent', 'reason'].sort(),
      );
      expect(p.userId).toBe(aliceId);
      expect(p.tokenKey).toHaveLength(15);
      if (p.reason === 'app') {
        expect(p).toMatchObject({ ip: '10.0.0.1', userAgent: 'admin' });
      } else {
        expect(p).toMatchObject({ ip: '203.0.113.50', userAgent: UA });
      }
    }

    const refreshed = eventsNamed(t, KnoxEvents.TOKEN_REFRESHED);
    expect(refreshed.map((p) => [p.tokenId, p.expiry])).toEqual([
      [cId, new Date(firstUse + 10 * HOUR)],
      [cId, new Date(refreshAt + 10 * HOUR)],
    ]);
    expect(refreshed[0]).toMatchObject({
      userId: aliceId,
      ip: '203.0.113.50',
      userAgent: UA,
    });

    expect(eventsNamed(t, KnoxEvents.TOKEN_ROTATED)).toEqual([
      {
        userId: aliceId,
        tokenId: cId,
        tokenKey: c.slice(0, 15),
        ip: '203.0.113.50',
        userAgent: UA,
        newTokenId: c2Id,
        oldTokenValidUntil: null,
        abilities: null,
      },
    ]);
    expect(eventsNamed(t, KnoxEvents.LOGOUT).map((p) => p.tokenId)).toEqual([
      eId,
    ]);
    expect(eventsNamed(t, KnoxEvents.LOGOUT_ALL)).toEqual([
      { userId: aliceId, count: 2, ip: '203.0.113.50', userAgent: UA },
    ]);
    expect(eventsNamed(t, KnoxEvents.LOGIN)).toHaveLength(
      plaintexts.length - 1,
    );

    const everything = JSON.stringify(t.events);
    for (const plaintext of plaintexts) {
      expect(everything).not.toContain(plaintext);
      expect(everything).not.toContain(digestOf(plaintext));
    }
  });
});

describe.each(PLATFORMS)(
  'knox.token-created for every new token, knox.login for logins only (%s)',
  (platform) => {
    const t = useTestApp({ platform }, async (app) => ({
      alice: await app.createUser('alice'),
    }));
    const created = () => eventsNamed(t, KnoxEvents.TOKEN_CREATED);
    const logins = () => eventsNamed(t, KnoxEvents.LOGIN);

    it('a login emits both, with the same token', async () => {
      const token = await login(t, 'alice');
      const [row] = await t.tokenRows();
      expect(created()).toEqual([
        expect.objectContaining({
          userId: t.seeded.alice.id,
          tokenId: row.id,
          tokenKey: token.slice(0, 15),
          source: 'login',
        }),
      ]);
      const { source, ...login_ } = created()[0];
      expect(source).toBe('login');
      expect(logins()).toEqual([login_]);
    });

    it("a token made by the app is not a login: source 'app', or 'login' when the app says so", async () => {
      const knox = t.app.get(KnoxTokenService);
      const issued = await knox.create(t.seeded.alice, {
        name: 'CI deploy key',
      });
      expect(created()).toEqual([
        expect.objectContaining({
          tokenId: issued.record.id,
          name: 'CI deploy key',
          source: 'app',
          ip: null,
        }),
      ]);
      expect(logins()).toEqual([]);
      const own = await knox.create(t.seeded.alice, {
        source: 'login',
        ip: '198.51.100.4',
      });
      expect(created().at(-1)).toMatchObject({
        tokenId: own.record.id,
        source: 'login',
      });
      expect(logins()).toEqual([
        expect.objectContaining({
          tokenId: own.record.id,
          ip: '198.51.100.4',
        }),
      ]);
      await expect(
        knox.create(t.seeded.alice, { source: 'rotate' as never }),
      ).rejects.toThrow(
        "KnoxTokenService: a token's source must be one of 'app', 'login', 'personal-access-token'; got the string 'rotate'.",
      );
      expect(await t.tokenRows()).toHaveLength(2);
    });

    it("a rotation and a personal access token emit token-created ('rotate', 'personal-access-token'), not login", async () => {
      const token = await login(t, 'alice');
      t.events.length = 0;
      const rotated = await t.http
        .post('/auth/rotate')
        .set('Authorization', bearer(token));
      expect(rotated.status).toBe(200);
      const pat = await t.http
        .post('/auth/tokens')
        .set('Authorization', bearer(rotated.body.token))
        .send({
          name: 'deploy',
          abilities: ['repo:read'],
          password: 'secret-password',
        });
      expect(pat.status).toBe(201);
      expect(created()).toEqual([
        expect.objectContaining({ tokenId: rotated.body.id, source: 'rotate' }),
        expect.objectContaining({
          tokenId: pat.body.id,
          source: 'personal-access-token',
          name: 'deploy',
          abilities: ['repo:read'],
        }),
      ]);
      expect(logins()).toEqual([]);
      const text = JSON.stringify(t.events);
      for (const plaintext of [token, rotated.body.token, pat.body.token]) {
        expect(text).not.toContain(plaintext);
      }
    });
  },
);

describe('without EventEmitterModule', () => {
  const t = useTestApp(
    {
      events: false,
      knox: { tokenLimitPerUser: 1, tokenLimitPolicy: 'evict-oldest' },
    },
    (app) => app.createUser('alice'),
  );

  it('sessions, rotation, refresh and eviction all work', async () => {
    const a = await login(t, 'alice');
    const b = await login(t, 'alice');
    expect(
      (await t.http.get('/me').set('Authorization', bearer(a))).status,
    ).toBe(401);
    const list = await t.http
      .get('/auth/tokens')
      .set('Authorization', bearer(b));
    expect(list.body).toHaveLength(1);
    t.clock.advance(HOUR);
    expect(
      (await t.http.post('/auth/refresh').set('Authorization', bearer(b)))
        .status,
    ).toBe(200);
    const rotated = await t.http
      .post('/auth/rotate')
      .set('Authorization', bearer(b));
    expect(rotated.status).toBe(200);
    const c: string = rotated.body.token;
    expect(
      (await t.http.post('/auth/logoutothers').set('Authorization', bearer(c)))
        .status,
    ).toBe(204);
    const id = list.body[0].id;
    expect(
      (
        await t.http
          .delete(`/auth/tokens/${id}`)
          .set('Authorization', bearer(c))
      ).status,
    ).toBe(404);
    expect(await t.tokenRows()).toHaveLength(1);
  });
});
