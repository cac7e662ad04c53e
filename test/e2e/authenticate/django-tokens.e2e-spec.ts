import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { KnoxEvents } from '../../../lib/index.js';
import type { TestUser } from '../../support/fixtures.js';
import {
  createTestApp,
  login,
  useTestApp,
  type TestApp,
} from '../../support/test-app.js';
import { HOUR, MESSAGES, expectUnauthorized } from '../../support/http.js';

/** A token as django-rest-knox 5 issues it: prefix + hex of 32 random bytes. */
function knoxToken(prefix = ''): string {
  return prefix + randomBytes(32).toString('hex');
}

/** Inserts the row exactly as django-rest-knox would: its five columns, nothing else. */
async function insertAsKnox(
  t: TestApp,
  token: string,
  user: TestUser,
  created: Date,
  expiry: Date | null,
): Promise<void> {
  const digest = createHash('sha512').update(token, 'utf8').digest('hex');
  await t.dataSource.query(
    'INSERT INTO knox_authtoken (digest, token_key, user_id, created, expiry) VALUES ($1, $2, $3, $4, $5)',
    [digest, token.slice(0, 15), user.id, created, expiry],
  );
}

describe('tokens written by django-rest-knox', () => {
  const t = useTestApp({}, async (app) => ({
    alice: await app.createUser('alice'),
  }));

  const me = (token: string) =>
    t.http.get('/me').set('Authorization', `Token ${token}`);

  it('a row inserted as knox does authenticates over HTTP', async () => {
    const token = knoxToken();
    const now = t.clock.now();
    await insertAsKnox(
      t,
      token,
      t.seeded.alice,
      now,
      new Date(now.getTime() + 10 * HOUR),
    );
    const res = await me(token);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id: t.seeded.alice.id,
      username: 'alice',
    });
  });

  it('a knox row that never expires, and one with a prefix, authenticate', async () => {
    const plain = knoxToken();
    const prefixed = knoxToken('TEST_');
    await insertAsKnox(t, plain, t.seeded.alice, t.clock.now(), null);
    await insertAsKnox(t, prefixed, t.seeded.alice, t.clock.now(), null);
    expect((await me(plain)).status).toBe(200);
    expect((await me(prefixed)).status).toBe(200);
  });

  it('an expired knox row: 401 "Invalid token." and the row deleted', async () => {
    const token = knoxToken();
    const now = t.clock.now();
    await insertAsKnox(
      t,
      token,
      t.seeded.alice,
      new Date(now.getTime() - 11 * HOUR),
      new Date(now.getTime() - HOUR),
    );
    expectUnauthorized(await me(token), MESSAGES.INVALID_TOKEN);
    expect(await t.tokenRows()).toHaveLength(0);
  });

  it('a knox row can log out, and is counted by logoutall', async () => {
    const first = knoxToken();
    const second = knoxToken();
    await insertAsKnox(t, first, t.seeded.alice, t.clock.now(), null);
    await insertAsKnox(t, second, t.seeded.alice, t.clock.now(), null);
    const out = await t.http
      .post('/auth/logout')
      .set('Authorization', `Token ${first}`);
    expect(out.status).toBe(204);
    expect(await t.tokenRows()).toHaveLength(1);
    const all = await t.http
      .post('/auth/logoutall')
      .set('Authorization', `Token ${second}`);
    expect(all.status).toBe(204);
    expect(await t.tokenRows()).toHaveLength(0);
  });

  it('the rows this module writes read back as knox reads them', async () => {
    const token = await login(t, 'alice');
    const [row] = await t.dataSource.query(
      'SELECT digest, token_key, user_id, created, expiry FROM knox_authtoken',
    );
    expect(row).toEqual({
      digest: createHash('sha512').update(token, 'utf8').digest('hex'),
      token_key: token.slice(0, 15),
      user_id: t.seeded.alice.id,
      created: t.clock.now(),
      expiry: new Date(t.clock.now().getTime() + 10 * HOUR),
    });
  });
});

describe('tokenPrefix', () => {
  it('a token made before the prefix was set still works; new tokens carry TEST_ and work', async () => {
    const before = await createTestApp();
    let oldToken: string;
    try {
      await before.createUser('alice');
      oldToken = await login(before, 'alice');
      expect(oldToken).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      await before.close();
    }

    const t = await createTestApp({
      knox: { tokenPrefix: 'TEST_' },
      keepData: true,
    });
    try {
      const old = await t.http
        .get('/me')
        .set('Authorization', `Token ${oldToken}`);
      expect(old.status).toBe(200);
      expect(old.body.username).toBe('alice');

      const token = await login(t, 'alice');
      expect(token).toMatch(/^TEST_[0-9a-f]{64}$/);
      const rows = await t.tokenRows();
      expect(rows.map((r) => r.token_key)).toContain(token.slice(0, 15));
      const res = await t.http
        .get('/me')
        .set('Authorization', `Token ${token}`);
      expect(res.status).toBe(200);
      expect(res.body.username).toBe('alice');
      // The token without its prefix is another token.
      expectUnauthorized(
        await t.http.get('/me').set('Authorization', `Token ${token.slice(5)}`),
        MESSAGES.INVALID_TOKEN,
      );
    } finally {
      await t.close();
    }
  });
});

describe('a database failure while authenticating', () => {
  let t: TestApp;
  let token: string;
  beforeAll(async () => {
    t = await createTestApp();
    await t.createUser('alice');
    token = await login(t, 'alice');
  });
  afterAll(async () => {
    await t.dataSource
      .query(
        'ALTER TABLE IF EXISTS knox_authtoken_gone RENAME TO knox_authtoken',
      )
      .catch(() => undefined);
    await t.close();
  });

  const expectUnavailable = (res: {
    status: number;
    body: unknown;
    headers: Record<string, unknown>;
  }) => {
    expect({ status: res.status, body: res.body }).toEqual({
      status: 503,
      body: {
        statusCode: 503,
        message: MESSAGES.UNAVAILABLE,
        error: 'Service Unavailable',
      },
    });
    // Not a 401: the client must not take it as "logged out".
    expect(res.headers['www-authenticate']).toBeUndefined();
  };

  it('a failing query is 503, not 401, and the token survives it', async () => {
    await t.dataSource.query(
      'ALTER TABLE knox_authtoken RENAME TO knox_authtoken_gone',
    );
    try {
      const res = await t.http
        .get('/me')
        .set('Authorization', `Token ${token}`);
      expectUnavailable(res);
      const out = await t.http
        .post('/auth/logout')
        .set('Authorization', `Token ${token}`);
      expectUnavailable(out);
    } finally {
      await t.dataSource.query(
        'ALTER TABLE knox_authtoken_gone RENAME TO knox_authtoken',
      );
    }
    expect(await t.tokenRows()).toHaveLength(1);
    const res = await t.http.get('/me').set('Authorization', `Token ${token}`);
    expect(res.status).toBe(200);
  });

  it('a closed connection pool is 503 for requests and logins, and the row survives', async () => {
    await t.dataSource.destroy();
    try {
      expectUnavailable(
        await t.http.get('/me').set('Authorization', `Token ${token}`),
      );
      const login = await t.http
        .post('/auth/login')
        .send({ username: 'alice', password: 'secret-password' });
      expect(login.status).toBe(503);
      expect(t.events.some((e) => e.name === KnoxEvents.TOKEN_EXPIRED)).toBe(
        false,
      );
    } finally {
      await t.dataSource.initialize();
    }
    expect(await t.tokenRows()).toHaveLength(1);
    expect(
      (await t.http.get('/me').set('Authorization', `Token ${token}`)).status,
    ).toBe(200);
  });
});
