import { describe, expect, it } from '@jest/globals';
import { Controller, HttpCode, Post, UseGuards } from '@nestjs/common';
import {
  KnoxGuard,
  KnoxMessages,
  KnoxTokenService,
  KnoxUser,
} from '../../lib/index.js';
import type { TestUser } from '../support/fixtures.js';
import { useTestApp } from '../support/test-app.js';

const HOST = 'api.example.com';
/** The API's own origin: the test server speaks plain HTTP. */
const SAME = `http://${HOST}`;
const FRONT = 'https://app.example.com';

@Controller('cookie')
class CookieController {
  @UseGuards(KnoxGuard)
  @Post('write')
  @HttpCode(200)
  write(@KnoxUser() user: TestUser) {
    return { username: user.username };
  }
}

/** The token cookie of a response's `Set-Cookie`, parsed. */
function setCookie(headers: Record<string, unknown>) {
  const raw = headers['set-cookie'] as string[] | undefined;
  expect(raw).toHaveLength(1);
  const [pair, ...attributes] = raw![0].split('; ');
  const [name, value] = pair.split('=');
  return { raw: raw![0], name, value, attributes };
}

describe.each(['express', 'fastify'] as const)(
  'the cookie transport on %s',
  (platform) => {
    const t = useTestApp(
      {
        platform,
        knox: { cookie: { trustedOrigins: [FRONT] } },
        controllers: [CookieController],
      },
      async (app) => ({ alice: await app.createUser('alice') }),
    );

    /** Logs in as a browser on the API's own origin; returns the cookie pair. */
    const cookieLogin = async () => {
      const res = await t.http
        .post('/auth/login')
        .set('Host', HOST)
        .set('Origin', SAME)
        .send({ username: 'alice', password: 'secret-password' });
      expect(res.status).toBe(200);
      const cookie = setCookie(res.headers);
      return { res, cookie, pair: `${cookie.name}=${cookie.value}` };
    };

    it('login sets an HttpOnly; Secure; SameSite=Strict cookie and leaves the token out of the body', async () => {
      const { res, cookie } = await cookieLogin();
      expect(res.body).toEqual({
        expiry: expect.any(String),
        id: expect.any(String),
      });
      expect(cookie.name).toBe('__Host-knox_token');
      expect(cookie.value).toMatch(/^[0-9a-f]{64}$/);
      expect(cookie.attributes).toEqual([
        `Expires=${new Date(res.body.expiry).toUTCString()}`,
        'Path=/',
        'HttpOnly',
        'Secure',
        'SameSite=Strict',
      ]);
      const rows = await t.tokenRows();
      expect(rows).toHaveLength(1);
      expect(JSON.stringify(rows)).not.toContain(cookie.value);
    });

    it('the guard reads the cookie: a safe method needs nothing more', async () => {
      const { pair } = await cookieLogin();
      const res = await t.http.get('/me').set('Cookie', `other=1; ${pair}`);
      expect(res.status).toBe(200);
      expect(res.body.username).toBe('alice');
    });

    it('an unsafe method authenticated by the cookie is refused without an Origin or from another origin', async () => {
      const { pair } = await cookieLogin();
      const none = await t.http
        .post('/cookie/write')
        .set('Host', HOST)
        .set('Cookie', pair);
      expect(none.status).toBe(403);
      expect(none.body.message).toBe(KnoxMessages.CSRF_NO_ORIGIN);
      for (const origin of [
        'https://evil.example',
        'https://api.example.com.evil.example',
        'http://api.example.com:8080',
        // The right host on the wrong scheme is another origin.
        'https://api.example.com',
        'null',
      ]) {
        const res = await t.http
          .post('/cookie/write')
          .set('Host', HOST)
          .set('Origin', origin)
          .set('Cookie', pair);
        expect(res.status).toBe(403);
        // `Origin: null` (an opaque origin) is an origin, and not a trusted one.
        expect(res.body.message).toBe(KnoxMessages.CSRF_UNTRUSTED_ORIGIN);
      }
      const evilReferer = await t.http
        .post('/cookie/write')
        .set('Host', HOST)
        .set('Referer', 'https://evil.example/page')
        .set('Cookie', pair);
      expect(evilReferer.status).toBe(403);
    });

    it('accepted from the same host, a trusted origin, or a same-origin Referer', async () => {
      const { pair } = await cookieLogin();
      const cases: Record<string, string>[] = [
        { Origin: SAME },
        { Origin: FRONT },
        { Referer: `${SAME}/settings?tab=1` },
      ];
      for (const headers of cases) {
        const res = await t.http
          .post('/cookie/write')
          .set('Host', HOST)
          .set(headers)
          .set('Cookie', pair);
        expect(res.status).toBe(200);
        expect(res.body).toEqual({ username: 'alice' });
      }
    });

    it('an Authorization header wins over the cookie and needs no Origin check', async () => {
      const { pair } = await cookieLogin();
      // A non-browser client holds a token issued server-side (or by a login without Origin).
      const issued = await t.app
        .get(KnoxTokenService)
        .create(t.seeded.alice, { name: 'cli' });
      const header = await t.http
        .post('/cookie/write')
        .set('Authorization', `Token ${issued.token}`);
      expect(header.status).toBe(200);
      expect(header.body).toEqual({ username: 'alice' });
      const wrong = await t.http
        .post('/cookie/write')
        .set('Authorization', `Token ${'x'.repeat(64)}`)
        .set('Cookie', pair);
      expect(wrong.status).toBe(401);
      expect(wrong.body.message).toBe(KnoxMessages.INVALID_TOKEN);
    });

    it('a bad cookie is a 401, like a bad header', async () => {
      const res = await t.http
        .get('/me')
        .set('Cookie', `__Host-knox_token=${'y'.repeat(64)}`);
      expect(res.status).toBe(401);
      expect(res.body.message).toBe(KnoxMessages.INVALID_TOKEN);
      const missing = await t.http
        .get('/me')
        .set('Cookie', '__Host-knox_token=');
      expect(missing.status).toBe(401);
      expect(missing.body.message).toBe(KnoxMessages.NOT_PROVIDED);
    });

    it('login from another origin, an opaque one, or with an untrusted Referer is refused (login CSRF)', async () => {
      for (const headers of [
        { Origin: 'https://evil.example' },
        { Origin: 'null' },
        { Referer: 'https://evil.example/page' },
      ]) {
        const evil = await t.http
          .post('/auth/login')
          .set('Host', HOST)
          .set(headers)
          .send({ username: 'alice', password: 'secret-password' });
        expect(evil.status).toBe(403);
        expect(evil.body.message).toBe(KnoxMessages.CSRF_UNTRUSTED_ORIGIN);
        expect(evil.headers['set-cookie']).toBeUndefined();
      }
      expect(await t.tokenRows()).toHaveLength(0);
    });

    it('a client that is no browser (no Origin, no Referer) logs in as without cookies: the token in the body, no cookie', async () => {
      for (const login of [
        t.http
          .post('/auth/login')
          .set('Host', HOST)
          .send({ username: 'alice', password: 'secret-password' }),
        t.http
          .post('/auth/login')
          .set('Host', HOST)
          .auth('alice', 'secret-password'),
      ]) {
        const res = await login;
        expect(res.status).toBe(200);
        expect(res.body).toEqual({
          expiry: expect.any(String),
          token: expect.stringMatching(/^[0-9a-f]{64}$/),
          id: expect.any(String),
        });
        expect(res.headers['set-cookie']).toBeUndefined();
        const me = await t.http
          .get('/me')
          .set('Authorization', `Token ${res.body.token}`);
        expect(me.status).toBe(200);
        // Its unsafe requests carry the header, so the Origin check does not apply to them.
        const write = await t.http
          .post('/cookie/write')
          .set('Authorization', `Token ${res.body.token}`);
        expect(write.status).toBe(200);
      }
      expect(await t.tokenRows()).toHaveLength(2);
    });

    it('logout revokes the token and clears the cookie; the old cookie is refused', async () => {
      const { pair } = await cookieLogin();
      const refused = await t.http
        .post('/auth/logout')
        .set('Host', HOST)
        .set('Origin', 'https://evil.example')
        .set('Cookie', pair);
      expect(refused.status).toBe(403);
      expect(await t.tokenRows()).toHaveLength(1);
      const res = await t.http
        .post('/auth/logout')
        .set('Host', HOST)
        .set('Origin', SAME)
        .set('Cookie', pair);
      expect(res.status).toBe(204);
      const cleared = setCookie(res.headers);
      expect(cleared.name).toBe('__Host-knox_token');
      expect(cleared.value).toBe('');
      expect(cleared.attributes).toEqual(
        expect.arrayContaining([
          'Max-Age=0',
          'Path=/',
          'HttpOnly',
          'Secure',
          'SameSite=Strict',
        ]),
      );
      expect(await t.tokenRows()).toHaveLength(0);
      const after = await t.http.get('/me').set('Cookie', pair);
      expect(after.status).toBe(401);
      expect(after.body.message).toBe(KnoxMessages.INVALID_TOKEN);
    });

    /** A POST as the browser on the API's own origin, with the cookie. */
    const browserPost = (path: string, pair: string) =>
      t.http
        .post(path)
        .set('Host', HOST)
        .set('Origin', SAME)
        .set('Cookie', pair);

    it('logoutall revokes every token and clears the cookie; logoutothers keeps it', async () => {
      const first = await cookieLogin();
      const second = await cookieLogin();
      const others = await browserPost('/auth/logoutothers', first.pair);
      expect(others.status).toBe(204);
      expect(others.headers['set-cookie']).toBeUndefined();
      expect(await t.tokenRows()).toHaveLength(1);
      expect((await t.http.get('/me').set('Cookie', second.pair)).status).toBe(
        401,
      );
      const res = await browserPost('/auth/logoutall', first.pair);
      expect(res.status).toBe(204);
      const cleared = setCookie(res.headers);
      expect(cleared.value).toBe('');
      expect(cleared.attributes).toContain('Max-Age=0');
      expect(await t.tokenRows()).toHaveLength(0);
      expect((await t.http.get('/me').set('Cookie', first.pair)).status).toBe(
        401,
      );
    });

    it('rotate of a cookie session puts the new token in the cookie, not the body', async () => {
      const { pair } = await cookieLogin();
      const res = await browserPost('/auth/rotate', pair);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        expiry: expect.any(String),
        id: expect.any(String),
      });
      const cookie = setCookie(res.headers);
      expect(cookie.value).toMatch(/^[0-9a-f]{64}$/);
      expect(`${cookie.name}=${cookie.value}`).not.toBe(pair);
      expect(cookie.attributes).toContain(
        `Expires=${new Date(res.body.expiry).toUTCString()}`,
      );
      const me = await t.http
        .get('/me')
        .set('Cookie', `${cookie.name}=${cookie.value}`);
      expect(me.status).toBe(200);
      expect(me.body.username).toBe('alice');
    });

    it('rotate by a header client answers the token in the body and sets no cookie', async () => {
      const { pair } = await cookieLogin();
      const issued = await t.app
        .get(KnoxTokenService)
        .create(t.seeded.alice, { name: 'cli' });
      const res = await t.http
        .post('/auth/rotate')
        .set('Cookie', pair)
        .set('Authorization', `Token ${issued.token}`);
      expect(res.status).toBe(200);
      expect(res.body.token).toMatch(/^[0-9a-f]{64}$/);
      expect(res.headers['set-cookie']).toBeUndefined();
      // The cookie's own session is untouched.
      expect((await t.http.get('/me').set('Cookie', pair)).status).toBe(200);
    });

    it('refresh of a cookie session sets the cookie again with the new expiry', async () => {
      const { pair, cookie } = await cookieLogin();
      t.clock.advance(60_000);
      const res = await browserPost('/auth/refresh', pair);
      expect(res.status).toBe(200);
      const renewed = setCookie(res.headers);
      expect(renewed.value).toBe(cookie.value);
      expect(renewed.attributes).toContain(
        `Expires=${new Date(res.body.expiry).toUTCString()}`,
      );
      expect(renewed.attributes).not.toEqual(cookie.attributes);
    });
  },
);

describe('the cookie transport is off by default', () => {
  const t = useTestApp({}, async (app) => ({
    alice: await app.createUser('alice'),
  }));

  it('login answers the token in the body and sets no cookie; a cookie is not read', async () => {
    const res = await t.http
      .post('/auth/login')
      .send({ username: 'alice', password: 'secret-password' });
    expect(res.status).toBe(200);
    expect(res.body.token).toMatch(/^[0-9a-f]{64}$/);
    expect(res.headers['set-cookie']).toBeUndefined();
    const me = await t.http
      .get('/me')
      .set('Cookie', `knox_token=${res.body.token}`);
    expect(me.status).toBe(401);
    expect(me.body.message).toBe(KnoxMessages.NOT_PROVIDED);
  });
});

describe.each(['express', 'fastify'] as const)(
  'the Origin check behind a TLS proxy (trust proxy) on %s',
  (platform) => {
    const t = useTestApp(
      {
        platform,
        trustProxy: true,
        knox: { cookie: {} },
        controllers: [CookieController],
      },
      async (app) => ({ alice: await app.createUser('alice') }),
    );

    it('takes the scheme from X-Forwarded-Proto: https passes, http is another origin', async () => {
      const login = await t.http
        .post('/auth/login')
        .set('Host', HOST)
        .set('X-Forwarded-Proto', 'https')
        .set('Origin', `https://${HOST}`)
        .send({ username: 'alice', password: 'secret-password' });
      expect(login.status).toBe(200);
      const cookie = setCookie(login.headers);
      const pair = `${cookie.name}=${cookie.value}`;
      const post = (origin: string, proto: string) =>
        t.http
          .post('/cookie/write')
          .set('Host', HOST)
          .set('X-Forwarded-Proto', proto)
          .set('Origin', origin)
          .set('Cookie', pair);
      const ok = await post(`https://${HOST}`, 'https');
      expect(ok.status).toBe(200);
      expect(ok.body).toEqual({ username: 'alice' });
      for (const [origin, proto] of [
        [`http://${HOST}`, 'https'],
        [`https://${HOST}`, 'http'],
      ]) {
        const res = await post(origin, proto);
        expect({ origin, proto, status: res.status }).toEqual({
          origin,
          proto,
          status: 403,
        });
        expect(res.body.message).toBe(KnoxMessages.CSRF_UNTRUSTED_ORIGIN);
      }
    });
  },
);
