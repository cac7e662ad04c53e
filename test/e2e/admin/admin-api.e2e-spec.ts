import { describe, expect, it } from '@jest/globals';
import { KnoxTokenService } from '../../../lib/index.js';
import { PLATFORMS } from '../../support/platforms.js';
import { MESSAGES, MINUTE, expectUnauthorized } from '../../support/http.js';
import {
  createTestApp,
  login,
  useTestApp,
  type TestApp,
} from '../../support/test-app.js';
import type { TestUser } from '../../support/fixtures.js';
import { rowDate, sql } from '../../support/test-db.js';

const bearer = (token: string) => ({ Authorization: `Token ${token}` });

/** The admin option of these apps: `root` is the one admin. */
const admin = {
  isAdmin: (user: TestUser) => user.username === 'root',
};

async function seed(t: TestApp) {
  const root = await t.createUser('root');
  const alice = await t.createUser('alice');
  const bob = await t.createUser('bob');
  return {
    root,
    alice,
    bob,
    rootToken: await login(t, 'root', 'secret-password', { name: 'console' }),
  };
}

describe.each(PLATFORMS)('the token admin API: who may (%s)', (platform) => {
  const t = useTestApp({ platform, knox: { admin } }, seed);

  it('401 without a token or with a bad one, with WWW-Authenticate', async () => {
    expectUnauthorized(
      await t.http.get('/auth/admin/tokens'),
      MESSAGES.NOT_PROVIDED,
    );
    expectUnauthorized(
      await t.http.get('/auth/admin/tokens').set(bearer('nope')),
      MESSAGES.INVALID_TOKEN,
    );
    for (const [method, path] of [
      ['delete', `/auth/admin/tokens/${crypto.randomUUID()}`],
      ['post', '/auth/admin/tokens/revoke'],
      ['post', '/auth/admin/users/1/logoutall'],
    ] as const) {
      expectUnauthorized(await t.http[method](path), MESSAGES.NOT_PROVIDED);
    }
  });

  it('403 for a user isAdmin refuses, asked on every request', async () => {
    const aliceToken = await login(t, 'alice');
    for (const [method, path] of [
      ['get', '/auth/admin/tokens'],
      ['delete', `/auth/admin/tokens/${crypto.randomUUID()}`],
      ['post', '/auth/admin/tokens/revoke'],
      ['post', `/auth/admin/users/${t.seeded.bob.id}/logoutall`],
    ] as const) {
      const res = await t.http[method](path).set(bearer(aliceToken));
      expect([path, res.status, res.body]).toEqual([
        path,
        403,
        {
          statusCode: 403,
          message: 'This account may not use the token admin.',
          error: 'Forbidden',
        },
      ]);
    }
    expect(await t.tokenRows()).toHaveLength(2);
    // Promoted and demoted without a new token: isAdmin is asked each time.
    await t.dataSource.query(
      sql(`UPDATE knox_test_user SET username = 'root' WHERE id = $1`),
      [t.seeded.root.id],
    );
    const ok = await t.http
      .get('/auth/admin/tokens')
      .set(bearer(t.seeded.rootToken));
    expect(ok.status).toBe(200);
    await t.dataSource.query(
      sql(`UPDATE knox_test_user SET username = 'demoted' WHERE id = $1`),
      [t.seeded.root.id],
    );
    const refused = await t.http
      .get('/auth/admin/tokens')
      .set(bearer(t.seeded.rootToken));
    expect(refused.status).toBe(403);
  });

  it("a token with an abilities list needs knox:admin; a token without a list (all) doesn't", async () => {
    const service = t.app.get(KnoxTokenService);
    const narrow = await service.create(t.seeded.root, {
      abilities: ['posts:read'],
    });
    const res = await t.http
      .get('/auth/admin/tokens')
      .set(bearer(narrow.token));
    expect(res.status).toBe(403);
    expect(res.body.message).toBe(
      'This token lacks the ability "knox:admin" required here.',
    );
    expect(res.headers['www-authenticate']).toMatch(/insufficient_scope/);
    for (const abilities of [['knox:admin'], ['knox:*'], ['*']]) {
      const { token } = await service.create(t.seeded.root, { abilities });
      const ok = await t.http.get('/auth/admin/tokens').set(bearer(token));
      expect([abilities, ok.status]).toEqual([abilities, 200]);
    }
  });

  it('the page and its files are public, with a strict CSP', async () => {
    const page = await t.http.get('/auth/admin');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    const csp = page.headers['content-security-policy'];
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:/);
    expect(page.text).toContain('src="admin/knox-admin.js"');
    expect(page.text).not.toMatch(/<script>|<style|\son[a-z]+=/);
    // With a trailing slash (Express; Fastify routes are strict), the files are linked from it.
    const slash = await t.http.get('/auth/admin/');
    expect(slash.status).toBe(platform === 'express' ? 200 : 404);
    if (slash.status === 200) {
      expect(slash.text).toContain('src="./knox-admin.js"');
    }
    const script = await t.http.get('/auth/admin/knox-admin.js');
    expect(script.status).toBe(200);
    expect(script.headers['content-type']).toMatch(/^text\/javascript/);
    expect(script.text).toContain('sessionStorage');
    expect(script.text).not.toMatch(/localStorage\.\w/);
    expect(script.text).not.toContain('innerHTML');
    const style = await t.http.get('/auth/admin/knox-admin.css');
    expect(style.headers['content-type']).toMatch(/^text\/css/);
  });
});

describe.each(PLATFORMS)('without the admin option (%s)', (platform) => {
  const t = useTestApp({ platform }, seed);

  it('no admin route exists: 404, even with a token', async () => {
    for (const [method, path] of [
      ['get', '/auth/admin'],
      ['get', '/auth/admin/knox-admin.js'],
      ['get', '/auth/admin/tokens'],
      ['delete', `/auth/admin/tokens/${crypto.randomUUID()}`],
      ['post', '/auth/admin/tokens/revoke'],
      ['post', '/auth/admin/users/1/logoutall'],
    ] as const) {
      const res = await t.http[method](path).set(bearer(t.seeded.rootToken));
      expect([path, res.status]).toEqual([path, 404]);
    }
  });
});

describe('without the admin option, through forRootAsync', () => {
  const t = useTestApp({ async: true }, seed);

  it('answers 404 on every admin route', async () => {
    for (const [method, path] of [
      ['get', '/auth/admin'],
      ['get', '/auth/admin/knox-admin.css'],
      ['get', '/auth/admin/tokens'],
      ['post', '/auth/admin/tokens/revoke'],
    ] as const) {
      const res = await t.http[method](path).set(bearer(t.seeded.rootToken));
      expect([path, res.status, res.body.message]).toEqual([
        path,
        404,
        `Cannot ${method.toUpperCase()} ${path}`,
      ]);
    }
  });
});

describe('forRootAsync with the admin option from the factory', () => {
  const t = useTestApp({ async: true, knox: { admin } }, seed);

  it('serves the admin', async () => {
    const res = await t.http
      .get('/auth/admin/tokens')
      .set(bearer(t.seeded.rootToken));
    expect(res.status).toBe(200);
    expect(res.body.items).toHaveLength(1);
    expect((await t.http.get('/auth/admin')).status).toBe(200);
  });
});

describe('the prefix follows the module path', () => {
  const t = useTestApp(
    { extras: { path: 'api/v1/knox' }, knox: { admin } },
    async (app) => {
      await app.createUser('root');
      const res = await app.http
        .post('/api/v1/knox/login')
        .send({ username: 'root', password: 'secret-password' });
      return res.body.token as string;
    },
  );

  it('mounts the admin under {path}/admin', async () => {
    const res = await t.http
      .get('/api/v1/knox/admin/tokens')
      .set(bearer(t.seeded));
    expect(res.status).toBe(200);
    expect((await t.http.get('/auth/admin/tokens')).status).toBe(404);
    expect((await t.http.get('/api/v1/knox/admin')).status).toBe(200);
  });
});

describe('the list: every field, never a secret', () => {
  const t = useTestApp(
    {
      knox: {
        admin: { ...admin, describeUser: (user) => `@${user.username}` },
        rotationGracePeriod: MINUTE,
      },
    },
    seed,
  );

  it('lists every user’s tokens with the fields of the contract', async () => {
    const aliceToken = await login(t, 'alice', 'secret-password', {
      name: 'phone',
    });
    await t.http
      .post('/auth/login')
      .set('User-Agent', 'curl/8.5')
      .send({ username: 'bob', password: 'secret-password', name: 'cli' });
    const pat = await t.http
      .post('/auth/tokens')
      .set(bearer(aliceToken))
      .send({
        name: 'deploy',
        abilities: ['posts:read'],
        password: 'secret-password',
      });
    expect(pat.status).toBe(201);
    const res = await t.http
      .get('/auth/admin/tokens')
      .set(bearer(t.seeded.rootToken));
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body.nextCursor).toBeNull();
    const rows = await t.tokenRows();
    expect(res.body.items).toHaveLength(rows.length);
    const byName = Object.fromEntries(
      res.body.items.map((item: { name: string }) => [item.name, item]),
    );
    const deployRow = rows.find((r) => r.name === 'deploy')!;
    expect(byName.deploy).toEqual({
      id: deployRow.id,
      userId: t.seeded.alice.id,
      user: '@alice',
      name: 'deploy',
      kind: 'personal-access-token',
      abilities: ['posts:read'],
      createdAt: rowDate(deployRow.created)!.toISOString(),
      expiresAt: rowDate(deployRow.expiry)!.toISOString(),
      lastUsedAt: rowDate(deployRow.last_used_at)!.toISOString(),
      lastUsedIp: deployRow.last_used_ip,
      ip: deployRow.ip,
      userAgent: deployRow.user_agent,
      retiredAt: null,
      active: true,
    });
    expect(byName.cli).toMatchObject({
      user: '@bob',
      kind: 'session',
      userAgent: 'curl/8.5',
      abilities: null,
    });
    expect(byName.phone.kind).toBe('session');
    for (const row of rows) {
      expect(res.text).not.toContain(row.digest);
      expect(res.text).not.toContain(row.token_key);
    }
    expect(res.text).not.toContain(aliceToken);
    expect(res.text).not.toContain(pat.body.token);
    // A rotated personal access token stays one, and the retired one shows its rotation.
    const rotated = await t.http
      .post('/auth/rotate')
      .set(bearer(pat.body.token));
    expect(rotated.status).toBe(200);
    const after = await t.http
      .get('/auth/admin/tokens?kind=personal-access-token')
      .set(bearer(t.seeded.rootToken));
    expect(
      after.body.items
        .map((i: { retiredAt: string | null }) => !!i.retiredAt)
        .sort(),
    ).toEqual([false, true]);
  });
});

describe('bad admin options fail at boot with a message saying what to fix', () => {
  it.each([
    [
      {},
      'KnoxModule: `admin.isAdmin` is required and must be a function (user) => boolean, e.g. admin: { isAdmin: (user) => user.isStaff }.',
    ],
    [
      { isAdmin: () => true, describeUser: 'username' },
      'KnoxModule: `admin.describeUser` must be a function.',
    ],
    [
      { isAdmin: () => true, searchUserColumns: 'username' },
      "KnoxModule: `admin.searchUserColumns` must be a list of the user entity's property names, e.g. ['username', 'email']; got \"username\".",
    ],
    [
      { isAdmin: () => true, isAdmn: true },
      "KnoxModule: unknown option 'admin.isAdmn'",
    ],
    [
      {
        isAdmin: () => true,
        searchUserColumns: ['username', 'isActive', 'nope'],
      },
      'KnoxModule: `admin.searchUserColumns` names isActive, nope, which TestUser has no text column for; list text columns of the user entity (by property name).',
    ],
    [
      5,
      'KnoxModule: `admin` must be an object ({ isAdmin, describeUser?, searchUserColumns? }) or false; got number.',
    ],
  ])('admin: %j', async (value, message) => {
    await expect(
      createTestApp({ knox: { admin: value as never } }),
    ).rejects.toThrow(message);
  });

  it('also through forRootAsync', async () => {
    await expect(
      createTestApp({ async: true, knox: { admin: {} as never } }),
    ).rejects.toThrow('`admin.isAdmin` is required');
  });

  it('admin: false is off', async () => {
    const t = await createTestApp({ knox: { admin: false } });
    try {
      expect((await t.http.get('/auth/admin/tokens')).status).toBe(404);
    } finally {
      await t.close();
    }
  });
});

describe('searchUserColumns: the admin search finds users by the columns listed', () => {
  const t = useTestApp(
    { knox: { admin: { ...admin, searchUserColumns: ['password'] } } },
    seed,
  );

  it('matches the listed column, not the default username', async () => {
    await t.dataSource.query(
      `UPDATE knox_test_user SET password = 'Needle-Pw' WHERE username = 'root'`,
    );
    const list = (search: string) =>
      t.http
        .get(`/auth/admin/tokens?search=${search}`)
        .set(bearer(t.seeded.rootToken));
    expect((await list('needle')).body.items).toHaveLength(1);
    expect((await list('root')).body.items).toHaveLength(0);
  });
});
