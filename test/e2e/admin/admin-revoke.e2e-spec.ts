import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KnoxEvents, KnoxTokenService } from '../../../lib/index.js';
import { PLATFORMS } from '../../support/platforms.js';
import { MESSAGES, expectUnauthorized } from '../../support/http.js';
import {
  EMBEDDED_DB,
  createTestApp,
  login,
  useTestApp,
  type TestApp,
} from '../../support/test-app.js';
import { bearer, refusedWithin, warm } from '../../support/cache.js';
import type { TestUser } from '../../support/fixtures.js';

const admin = { isAdmin: (user: TestUser) => user.username === 'root' };

async function seed(t: TestApp) {
  const root = await t.createUser('root');
  const alice = await t.createUser('alice');
  const bob = await t.createUser('bob');
  const rootToken = await login(t, 'root');
  return { root, alice, bob, rootToken };
}

type Item = { id: string; userId: number; name: string | null };

describe.each(PLATFORMS)('admin revocations (%s)', (platform) => {
  const t = useTestApp({ platform, knox: { admin } }, seed);
  const as = () => bearer(t.seeded.rootToken);

  it('DELETE tokens/:id revokes any user’s token: 204, then it is refused; 404 for an unknown id', async () => {
    const aliceToken = await login(t, 'alice', 'secret-password', {
      name: 'laptop',
    });
    const aliceRow = (await t.tokenRows()).find((r) => r.name === 'laptop')!;
    expect((await t.http.get('/me').set(bearer(aliceToken))).status).toBe(200);
    t.events.length = 0;
    const res = await t.http
      .delete(`/auth/admin/tokens/${aliceRow.id}`)
      .set(as())
      .set('User-Agent', 'ops-console');
    expect(res.status).toBe(204);
    expectUnauthorized(
      await t.http.get('/me').set(bearer(aliceToken)),
      MESSAGES.INVALID_TOKEN,
    );
    expect(t.events).toEqual([
      {
        name: KnoxEvents.TOKEN_REVOKED,
        payload: {
          userId: t.seeded.alice.id,
          tokenId: aliceRow.id,
          tokenKey: aliceRow.token_key,
          ip: expect.any(String),
          userAgent: 'ops-console',
          reason: 'admin',
          actorId: t.seeded.root.id,
        },
      },
    ]);
    const again = await t.http
      .delete(`/auth/admin/tokens/${aliceRow.id}`)
      .set(as());
    expect(again.status).toBe(404);
    expect(again.body.message).toBe('Token not found.');
    const notAnId = await t.http.delete('/auth/admin/tokens/nope').set(as());
    expect(notAnId.status).toBe(404);
  });

  it('POST tokens/revoke revokes many across users: { revoked }, unknown ids count for nothing', async () => {
    const a1 = await login(t, 'alice');
    const a2 = await login(t, 'alice');
    const b1 = await login(t, 'bob');
    const kept = await login(t, 'bob');
    const rows = await t.tokenRows();
    const idOf = async (token: string) =>
      (await t.app.get(KnoxTokenService).authenticate(token)).token.id;
    const ids = [await idOf(a1), await idOf(a2), await idOf(b1)];
    t.events.length = 0;
    const res = await t.http
      .post('/auth/admin/tokens/revoke')
      .set(as())
      .send({ ids: [...ids, crypto.randomUUID(), ids[0].toUpperCase()] });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ revoked: 3 });
    for (const token of [a1, a2, b1]) {
      expect((await t.http.get('/me').set(bearer(token))).status).toBe(401);
    }
    expect((await t.http.get('/me').set(bearer(kept))).status).toBe(200);
    expect(await t.tokenRows()).toHaveLength(rows.length - 3);
    const revoked = t.events.filter((e) => e.name === KnoxEvents.TOKEN_REVOKED);
    expect(revoked.map((e) => e.payload.tokenId).sort()).toEqual(
      [...ids].sort(),
    );
    for (const event of revoked) {
      expect(event.payload).toMatchObject({
        reason: 'admin',
        actorId: t.seeded.root.id,
      });
    }
  });

  it('POST tokens/revoke: 400 with a message for a body that is not a list of token ids', async () => {
    for (const body of [
      {},
      { ids: [] },
      { ids: 'x' },
      { ids: ['not-a-uuid'] },
      { ids: [5] },
      { ids: Array.from({ length: 201 }, () => crypto.randomUUID()) },
    ]) {
      const res = await t.http
        .post('/auth/admin/tokens/revoke')
        .set(as())
        .send(body);
      expect([body, res.status]).toEqual([body, 400]);
      expect(res.body.message).toMatch(/'ids' must/);
    }
    const text = await t.http
      .post('/auth/admin/tokens/revoke')
      .set(as())
      .set('Content-Type', 'text/plain')
      .send('ids');
    expect(text.status).toBe(400);
  });

  it('POST users/:userId/logoutall revokes every token of that user only, with events naming the admin', async () => {
    const a1 = await login(t, 'alice');
    const a2 = await login(t, 'alice');
    const b1 = await login(t, 'bob');
    t.events.length = 0;
    const res = await t.http
      .post(`/auth/admin/users/${t.seeded.alice.id}/logoutall`)
      .set(as());
    expect(res.status).toBe(204);
    for (const token of [a1, a2]) {
      expect((await t.http.get('/me').set(bearer(token))).status).toBe(401);
    }
    expect((await t.http.get('/me').set(bearer(b1))).status).toBe(200);
    expect(t.events.map((e) => [e.name, e.payload.reason])).toEqual([
      [KnoxEvents.TOKEN_REVOKED, 'admin'],
      [KnoxEvents.TOKEN_REVOKED, 'admin'],
      [KnoxEvents.LOGOUT_ALL, 'admin'],
    ]);
    expect(t.events[2].payload).toMatchObject({
      userId: t.seeded.alice.id,
      count: 2,
      actorId: t.seeded.root.id,
    });
    for (const bad of ['abc', '1.5', '']) {
      const r = await t.http
        .post(`/auth/admin/users/${bad}/logoutall`)
        .set(as());
      expect([bad, r.status]).toEqual([bad, bad === '' ? 404 : 400]);
    }
  });

  it('the same operations on KnoxTokenService, for scripts', async () => {
    const service = t.app.get(KnoxTokenService);
    const token = await login(t, 'bob', 'secret-password', { name: 'tv' });
    const page = await service.findTokens({ search: 'TV' });
    expect(page.items.map((i) => i.name)).toEqual(['tv']);
    t.events.length = 0;
    expect(
      await service.revokeTokens([page.items[0].id], { actorId: 'cron' }),
    ).toBe(1);
    expect(t.events[0].payload).toMatchObject({
      reason: 'admin',
      actorId: 'cron',
    });
    expect((await t.http.get('/me').set(bearer(token))).status).toBe(401);
    await login(t, 'bob');
    expect(
      await service.logoutUserEverywhere(t.seeded.bob.id, { actorId: 7 }),
    ).toBe(1);
    await expect(service.findTokens({ limit: 0 })).rejects.toThrow(
      "'limit' must be a whole number from 1 to 200; got 0.",
    );
  });
});

describe('admin list: filters and search', () => {
  const t = useTestApp(
    { knox: { admin: { ...admin, describeUser: (u) => `${u.username}!` } } },
    seed,
  );
  const list = async (query: string) => {
    const res = await t.http
      .get(`/auth/admin/tokens${query}`)
      .set(bearer(t.seeded.rootToken));
    expect([query, res.status]).toEqual([query, 200]);
    return res.body.items as Item[];
  };
  const names = async (query: string) =>
    (await list(query)).map((i) => i.name).sort();

  it('filters by user, kind, state, and searches name, IPs, user agent, user label, token and id', async () => {
    const aliceToken = await login(t, 'alice', 'secret-password', {
      name: 'Work Laptop',
    });
    await t.http
      .post('/auth/login')
      .set('User-Agent', 'Mozilla/5.0 (Firefox_100%)')
      .send({ username: 'bob', password: 'secret-password', name: 'home' });
    const pat = await t.http
      .post('/auth/tokens')
      .set(bearer(aliceToken))
      .send({
        name: 'ci_deploy',
        abilities: ['repo:read'],
        password: 'secret-password',
      });
    expect(pat.status).toBe(201);
    const short = await t.app
      .get(KnoxTokenService)
      .create(t.seeded.bob, { name: 'short', ttl: 1000 });
    t.clock.advance(2000);

    expect(await names(`?userId=${t.seeded.alice.id}`)).toEqual([
      'Work Laptop',
      'ci_deploy',
    ]);
    expect(await names('?kind=personal-access-token')).toEqual(['ci_deploy']);
    expect(await names('?kind=session')).toEqual(
      [null, 'Work Laptop', 'home', 'short'].sort(),
    );
    expect(await names('?active=false')).toEqual(['short']);
    expect((await names('?active=true')).includes('short')).toBe(false);
    expect(await names('?search=work%20LAP')).toEqual(['Work Laptop']);
    expect(await names('?search=firefox_100%25')).toEqual(['home']);
    // LIKE's wildcards are literal: '_' and '%' match only themselves.
    expect(await names('?search=ci%25deploy')).toEqual([]);
    expect(await names('?search=i_d')).toEqual(['ci_deploy']);
    expect(await names('?search=bob')).toEqual(['home', 'short']);
    const [row] = (await t.tokenRows()).filter((r) => r.name === 'home');
    // `short` was issued by the app, with no IP.
    expect(row.ip).toEqual(expect.any(String));
    expect(await names(`?search=${row.ip}&userId=${t.seeded.bob.id}`)).toEqual([
      'home',
    ]);
    expect(await names(`?search=${encodeURIComponent(short.token)}`)).toEqual([
      'short',
    ]);
    expect(await names(`?search=${row.id.toUpperCase()}`)).toEqual(['home']);
    expect(await names(`?search=ci&kind=session`)).toEqual([]);
    const [item] = await list('?search=ci_deploy');
    expect(item).toMatchObject({ userId: t.seeded.alice.id });
    expect((await list('?search=alice!'))[0]).toBeUndefined();
  });

  it('searches case-insensitively beyond ASCII: the name and the user label, either case', async () => {
    await login(t, 'alice', 'secret-password', { name: 'Éric’s ÜBER Phone' });
    await t.createUser('Zoë');
    await login(t, 'Zoë', 'secret-password', { name: 'tablet' });
    const search = (text: string) =>
      names(`?search=${encodeURIComponent(text)}`);
    expect(await search('éric’s über')).toEqual(['Éric’s ÜBER Phone']);
    expect(await search('ÉRIC')).toEqual(['Éric’s ÜBER Phone']);
    expect(await search('zoë')).toEqual(['tablet']);
    expect(await search('ZOË')).toEqual(['tablet']);
    // Folding the case is all: an accent still tells letters apart.
    expect(await search('eric')).toEqual([]);
  });

  it('sorts by creation, last use and expiry, both ways', async () => {
    for (const name of ['one', 'two', 'three']) {
      await login(t, 'alice', 'secret-password', { name });
      t.clock.advance(1000);
    }
    const alice = `&userId=${t.seeded.alice.id}`;
    expect((await list(`?sort=-created${alice}`)).map((i) => i.name)).toEqual([
      'three',
      'two',
      'one',
    ]);
    expect((await list(`?sort=created${alice}`)).map((i) => i.name)).toEqual([
      'one',
      'two',
      'three',
    ]);
    expect((await list(`?sort=expiry${alice}`)).map((i) => i.name)).toEqual([
      'one',
      'two',
      'three',
    ]);
    expect(
      (await list(`?sort=-lastUsedAt${alice}`)).map((i) => i.name),
    ).toEqual(['three', 'two', 'one']);
  });

  it('answers 400 with a message for a bad parameter', async () => {
    for (const [query, message] of [
      ['?limit=0', "'limit' must be a whole number from 1 to 200; got 0."],
      ['?limit=201', "'limit' must be a whole number from 1 to 200; got 201."],
      [
        '?limit=ten',
        "'limit' must be a whole number from 1 to 200; got 'ten'.",
      ],
      [
        '?kind=robot',
        "'kind' must be 'session' or 'personal-access-token'; got 'robot'.",
      ],
      ['?active=yes', "'active' must be true or false; got 'yes'."],
      [
        '?sort=name',
        "'sort' must be one of -created, created, -lastUsedAt, lastUsedAt, -expiry, expiry; got 'name'.",
      ],
      [
        '?cursor=garbage',
        "'cursor' is not a cursor this list gave (pass nextCursor as it came).",
      ],
      ['?userId=abc', "'userId' must be a whole number; got 'abc'."],
      [
        '?user=1',
        "Unknown query parameter 'user'; the list takes userId, search, kind, active, sort, limit, cursor.",
      ],
      [
        '?kind=session&kind=session',
        "Query parameter 'kind' must be given once.",
      ],
    ]) {
      const res = await t.http
        .get(`/auth/admin/tokens${query}`)
        .set(bearer(t.seeded.rootToken));
      expect([query, res.status, res.body.message]).toEqual([
        query,
        400,
        message,
      ]);
    }
  });
});

const suite = EMBEDDED_DB ? describe.skip : describe;

suite(
  'admin revocation with the cache on: a second instance refuses within 100 ms',
  () => {
    let a: TestApp;
    let b: TestApp;

    beforeAll(async () => {
      a = await createTestApp({ knox: { cache: true, admin } });
      b = await createTestApp({
        platform: 'fastify',
        knox: { cache: true, admin },
        keepData: true,
      });
    });
    afterAll(async () => {
      await Promise.all([a, b].map((app) => app?.close()));
    });

    it('DELETE, bulk revoke and logoutall on one instance reach the other', async () => {
      await a.reset();
      b.clock.set(a.clock.now());
      const root = await a.createUser('root');
      await a.createUser('alice');
      const rootToken = await login(a, 'root');
      expect(root.id).toBeDefined();
      const service = a.app.get(KnoxTokenService);
      const idOf = async (token: string) =>
        (await service.authenticate(token)).token.id;
      for (let trial = 0; trial < 5; trial++) {
        const one = await login(a, 'alice');
        const two = await login(a, 'alice');
        const three = await login(a, 'alice');
        for (const token of [one, two, three]) {
          await warm(a, token);
          await warm(b, token);
        }
        await a.http
          .delete(`/auth/admin/tokens/${await idOf(one)}`)
          .set(bearer(rootToken))
          .expect(204);
        expect(await refusedWithin(b, one)).toBeLessThan(100);
        await b.http
          .post('/auth/admin/tokens/revoke')
          .set(bearer(rootToken))
          .send({ ids: [await idOf(two)] })
          .expect(200);
        expect(await refusedWithin(a, two)).toBeLessThan(100);
        const alice = (await a.tokenRows()).find((r) => r.user_id !== root.id)!;
        await a.http
          .post(`/auth/admin/users/${alice.user_id}/logoutall`)
          .set(bearer(rootToken))
          .expect(204);
        expect(await refusedWithin(b, three)).toBeLessThan(100);
      }
    });
  },
);
