import { beforeEach, describe, expect, it } from '@jest/globals';
import { PLATFORMS } from '../../support/platforms.js';
import {
  createTestApp,
  login,
  useTestApp,
  type TestApp,
} from '../../support/test-app.js';
import {
  MESSAGES,
  SECOND,
  expectUnauthorized,
  rawGet,
} from '../../support/http.js';

/** Boots one app per describe; before each test: tables emptied, alice created and logged in. */
const withAlice = async (app: TestApp) => {
  await app.createUser('alice');
  return { token: await login(app, 'alice') };
};

describe.each(PLATFORMS)('the Authorization header (%s)', (platform) => {
  const t = useTestApp({ platform }, async (app) => {
    const seeded = await withAlice(app);
    app.recorder.reset();
    return seeded;
  });
  let token: string;
  beforeEach(() => {
    token = t.seeded.token;
  });

  const get = (authorization?: string) => {
    const req = t.http.get('/me');
    return authorization === undefined
      ? req
      : req.set('Authorization', authorization);
  };

  it('authenticates `Token <token>`, the scheme compared case-insensitively', async () => {
    for (const scheme of ['Token', 'token', 'TOKEN', 'tOkEn']) {
      const res = await get(`${scheme} ${token}`);
      expect(res.status).toBe(200);
      expect(res.body.username).toBe('alice');
    }
  });

  it('accepts `Bearer <token>` as well by default', async () => {
    const res = await get(`Bearer ${token}`);
    expect(res.status).toBe(200);
  });

  it('no header: 401 "Authentication credentials were not provided."', async () => {
    expectUnauthorized(await get(), MESSAGES.NOT_PROVIDED);
  });

  it('another scheme is not ours: 401 "Authentication credentials were not provided."', async () => {
    expectUnauthorized(
      await get('Basic YWxpY2U6c2VjcmV0'),
      MESSAGES.NOT_PROVIDED,
    );
    expectUnauthorized(await get(`Tokens ${token}`), MESSAGES.NOT_PROVIDED);
  });

  it('`Token` alone: 401 "Invalid token header. No credentials provided."', async () => {
    expectUnauthorized(await get('Token'), MESSAGES.NO_CREDENTIALS);
    expectUnauthorized(await get('Token   '), MESSAGES.NO_CREDENTIALS);
  });

  it('`Token a b`: 401 "Invalid token header. Token string should not contain spaces."', async () => {
    expectUnauthorized(await get('Token a b'), MESSAGES.SPACES);
    expectUnauthorized(
      await get(`Token ${token.slice(0, 32)} ${token.slice(32)}`),
      MESSAGES.SPACES,
    );
  });

  it('an unknown token: 401 "Invalid token."', async () => {
    expectUnauthorized(
      await get(`Token ${'0'.repeat(64)}`),
      MESSAGES.INVALID_TOKEN,
    );
  });

  it('a 14-character token: 401 "Invalid token."', async () => {
    expectUnauthorized(
      await get(`Token ${token.slice(0, 14)}`),
      MESSAGES.INVALID_TOKEN,
    );
  });

  it('a valid token with one character appended (or removed): 401 "Invalid token."', async () => {
    expectUnauthorized(await get(`Token ${token}a`), MESSAGES.INVALID_TOKEN);
    expectUnauthorized(await get(`Token ${token}0`), MESSAGES.INVALID_TOKEN);
    expectUnauthorized(
      await get(`Token ${token.slice(0, -1)}`),
      MESSAGES.INVALID_TOKEN,
    );
    expectUnauthorized(
      await get(`Token ${token.toUpperCase()}`),
      MESSAGES.INVALID_TOKEN,
    );
  });

  it('a valid request with no write due costs one round trip: token and user in one SELECT', async () => {
    t.clock.advance(30 * SECOND);
    await get(`Token ${token}`);
    t.recorder.reset();
    t.clock.advance(10 * SECOND);
    const res = await get(`Token ${token}`);
    expect(res.status).toBe(200);
    expect(t.recorder.statements).toHaveLength(1);
    expect(t.recorder.writes).toHaveLength(0);
    expect(t.recorder.statements[0]).toMatch(/^SELECT/);
    expect(t.recorder.statements[0]).toMatch(/knox_authtoken/);
    expect(t.recorder.statements[0]).toMatch(/knox_test_user/);
  });

  it('a malformed token costs no query at all', async () => {
    await get(`Token ${token.slice(0, 14)}`);
    await get(`Token ${'x'.repeat(64)}`);
    await get(`Token ${'a'.repeat(8000)}`);
    expect(t.recorder.statements).toHaveLength(0);
  });

  describe('malformed headers are a 4xx, never a 5xx; those that reach the guard are 401 with WWW-Authenticate', () => {
    /** 4xx, and when the guard answered (401), with knox's header. */
    function expectRefused(res: {
      status: number;
      headers: Record<string, unknown>;
    }): void {
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      if (res.status === 401) {
        expect(res.headers['www-authenticate']).toBe('Token');
      }
    }

    it('non-UTF-8 bytes in the token: 401', async () => {
      const bytes = Buffer.concat([
        Buffer.from('Token ', 'latin1'),
        Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x80]),
        Buffer.from(token.slice(5), 'latin1'),
      ]);
      const raw = await rawGet(t.app, '/me', bytes);
      expect(raw.status).toBe(401);
      expect(raw.headers['www-authenticate']).toBe('Token');
      expect(JSON.parse(raw.body)).toEqual({
        statusCode: 401,
        message: MESSAGES.MALFORMED_HEADER,
        error: 'Unauthorized',
      });
      // The same through Node's HTTP client, which sends latin1 strings as single bytes.
      const res = await get(`Token \u00ff\u00fe${token.slice(2)}`);
      expectUnauthorized(res, MESSAGES.MALFORMED_HEADER);
    });

    it('valid UTF-8 that is not ASCII: 401', async () => {
      const bytes = Buffer.concat([
        Buffer.from('Token ', 'latin1'),
        Buffer.from(`é${token.slice(1)}`, 'utf8'),
      ]);
      const raw = await rawGet(t.app, '/me', bytes);
      expect(raw.status).toBe(401);
      expect(raw.headers['www-authenticate']).toBe('Token');
    });

    it('non-UTF-8 bytes in the scheme: 401, not ours', async () => {
      const raw = await rawGet(
        t.app,
        '/me',
        Buffer.concat([Buffer.from([0xff, 0x80]), Buffer.from(` ${token}`)]),
      );
      expect(raw.status).toBe(401);
      expect(raw.headers['www-authenticate']).toBe('Token');
    });

    it.each(
      [0x00, 0x01, 0x08, 0x0a, 0x0b, 0x0c, 0x0d, 0x1b, 0x1f, 0x7f].map(
        (code): [string, number] => [code.toString(16).padStart(2, '0'), code],
      ),
    )(
      'a control character (0x%s) in the token: 4xx, never 5xx',
      async (_hex, code) => {
        const bytes = Buffer.concat([
          Buffer.from('Token ', 'latin1'),
          Buffer.from(token.slice(0, 10), 'latin1'),
          Buffer.from([code]),
          Buffer.from(token.slice(10), 'latin1'),
        ]);
        const raw = await rawGet(t.app, '/me', bytes);
        expectRefused(raw);
      },
    );

    it('a tab between scheme and token is whitespace; a tab inside the token is a space', async () => {
      const between = await rawGet(
        t.app,
        '/me',
        Buffer.from(`Token\t${token}`, 'latin1'),
      );
      expect(between.status).toBe(200);
      const inside = await rawGet(
        t.app,
        '/me',
        Buffer.from(`Token ${token.slice(0, 5)}\t${token.slice(5)}`, 'latin1'),
      );
      expect(inside.status).toBe(401);
      expect(inside.headers['www-authenticate']).toBe('Token');
      expect(JSON.parse(inside.body).message).toBe(MESSAGES.SPACES);
    });

    it('a huge header: 431 from the HTTP server', async () => {
      const raw = await rawGet(
        t.app,
        '/me',
        Buffer.from(`Token ${'a'.repeat(20_000)}`, 'latin1'),
      );
      expect(raw.status).toBe(431);
    });

    it('a long header under the server limit: 401 "Invalid token."', async () => {
      expectUnauthorized(
        await get(`Token ${'a'.repeat(12_000)}`),
        MESSAGES.INVALID_TOKEN,
      );
      expectUnauthorized(
        await get(`Token ${token}${' x'.repeat(3000)}`),
        MESSAGES.SPACES,
      );
    });
  });
});

describe.each(PLATFORMS)(
  'a custom header prefix (authHeaderPrefix: "Baerer", %s)',
  (platform) => {
    const t = useTestApp(
      { platform, knox: { authHeaderPrefix: 'Baerer' } },
      withAlice,
    );
    let token: string;
    beforeEach(() => {
      token = t.seeded.token;
    });

    it('`Baerer <token>` authenticates', async () => {
      const res = await t.http
        .get('/me')
        .set('Authorization', `Baerer ${token}`);
      expect(res.status).toBe(200);
      expect(res.body.username).toBe('alice');
    });

    it('`Token <token>` is another scheme: 401, WWW-Authenticate: Baerer', async () => {
      const res = await t.http
        .get('/me')
        .set('Authorization', `Token ${token}`);
      expectUnauthorized(res, MESSAGES.NOT_PROVIDED, 'Baerer');
    });

    it('the header messages name no scheme but come with WWW-Authenticate: Baerer', async () => {
      const res = await t.http.get('/me').set('Authorization', 'Baerer');
      expectUnauthorized(res, MESSAGES.NO_CREDENTIALS, 'Baerer');
    });
  },
);

describe.each(PLATFORMS)('Authorization schemes (%s)', (platform) => {
  describe('default: Token and Bearer, case-insensitively', () => {
    const t = useTestApp({ platform }, withAlice);
    let token: string;
    beforeEach(() => {
      token = t.seeded.token;
    });

    it('accepts both schemes in any case', async () => {
      for (const scheme of [
        'Token',
        'token',
        'TOKEN',
        'Bearer',
        'bearer',
        'BEARER',
        'bEaReR',
      ]) {
        const res = await t.http
          .get('/me')
          .set('Authorization', `${scheme} ${token}`);
        expect({ scheme, status: res.status }).toEqual({ scheme, status: 200 });
      }
    });

    it('other schemes are not ours: 401 "not provided", WWW-Authenticate: Token', async () => {
      for (const scheme of ['Basic', 'Bearerx', 'JWT', 'Knox', 'Tokens']) {
        expectUnauthorized(
          await t.http.get('/me').set('Authorization', `${scheme} ${token}`),
          MESSAGES.NOT_PROVIDED,
        );
      }
    });
  });

  describe('configured: authHeaderPrefix ["Knox", "ApiKey"]', () => {
    const t = useTestApp(
      { platform, knox: { authHeaderPrefix: ['Knox', 'ApiKey'] } },
      withAlice,
    );
    let token: string;
    beforeEach(() => {
      token = t.seeded.token;
    });

    it('accepts exactly the listed schemes, case-insensitively; the first is the challenge', async () => {
      for (const scheme of ['Knox', 'KNOX', 'apikey', 'ApiKey']) {
        const res = await t.http
          .get('/me')
          .set('Authorization', `${scheme} ${token}`);
        expect({ scheme, status: res.status }).toEqual({ scheme, status: 200 });
      }
      for (const scheme of ['Token', 'Bearer']) {
        expectUnauthorized(
          await t.http.get('/me').set('Authorization', `${scheme} ${token}`),
          MESSAGES.NOT_PROVIDED,
          'Knox',
        );
      }
    });
  });
});

describe('Authorization schemes at boot', () => {
  it('refuses at boot an empty list or a scheme with a space', async () => {
    for (const authHeaderPrefix of [[], ['Token', 'Bad Scheme'], '']) {
      await expect(
        createTestApp({ knox: { authHeaderPrefix } }),
      ).rejects.toThrow(/authHeaderPrefix/);
    }
  });
});
