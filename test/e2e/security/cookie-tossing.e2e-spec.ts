/**
 * Issue 23 items 7 and 8. Cookie tossing: with `secure` and no `domain` the token cookie is
 * named `__Host-knox_token` (Path=/), which no other host of the site can set; when several
 * token cookies arrive anyway (a custom name), none is used — 401 with a message — rather than
 * the first one, which an attacker orders by a longer Path. Logout by `Authorization` header
 * leaves a cookie that did not authenticate the request alone.
 */
import { describe, expect, it } from '@jest/globals';
import { KnoxMessages, KnoxTokenService } from '../../../lib/index.js';
import { PLATFORMS } from '../../support/platforms.js';
import { useTestApp, type TestApp } from '../../support/test-app.js';
import { bearer, rowOf } from '../../support/sessions.js';

const HOST = 'api.example.com';
const SAME = `http://${HOST}`;

async function cookieLogin(
  t: TestApp,
  username: string,
): Promise<{ name: string; value: string; raw: string; pair: string }> {
  const res = await t.http
    .post('/auth/login')
    .set('Host', HOST)
    .set('Origin', SAME)
    .send({ username, password: 'secret-password' });
  expect(res.status).toBe(200);
  const raw = (res.headers['set-cookie'] as unknown as string[])[0];
  const pair = raw.split('; ')[0];
  const [name, value] = pair.split('=');
  return { name, value, raw, pair };
}

describe.each(PLATFORMS)('cookie tossing (%s)', (platform) => {
  describe('defaults (secure, no domain)', () => {
    const t = useTestApp({ platform, knox: { cookie: true } }, async (app) => ({
      alice: await app.createUser('alice'),
    }));

    it('the cookie is __Host-knox_token with Path=/, Secure, no Domain', async () => {
      const cookie = await cookieLogin(t, 'alice');
      expect(cookie.name).toBe('__Host-knox_token');
      const attributes = cookie.raw.split('; ').slice(1);
      expect(attributes).toEqual(
        expect.arrayContaining(['Path=/', 'Secure', 'HttpOnly']),
      );
      expect(attributes.some((a) => a.startsWith('Domain='))).toBe(false);
      expect((await t.http.get('/me').set('Cookie', cookie.pair)).status).toBe(
        200,
      );
      // The old name is not read: a cookie a sibling host sets cannot stand in for it.
      expect(
        (await t.http.get('/me').set('Cookie', `knox_token=${cookie.value}`))
          .status,
      ).toBe(401);
    });
  });

  describe('a custom cookie name, two cookies of that name', () => {
    const t = useTestApp(
      { platform, knox: { cookie: { name: 'sid' } } },
      async (app) => ({
        alice: await app.createUser('alice'),
        mallory: await app.createUser('mallory'),
      }),
    );

    it('are refused with 401 and a message, whichever comes first; one alone still works', async () => {
      const alice = await cookieLogin(t, 'alice');
      expect(alice.name).toBe('sid');
      // The attacker's own valid session, planted with a longer Path so it is sent first.
      const planted = await cookieLogin(t, 'mallory');
      for (const header of [
        `${planted.pair}; ${alice.pair}`,
        `${alice.pair}; ${planted.pair}`,
        `other=1; ${planted.pair}; x=2; ${alice.pair}`,
      ]) {
        const res = await t.http.get('/me').set('Cookie', header);
        expect({ header, status: res.status }).toEqual({ header, status: 401 });
        expect(res.body.message).toBe(KnoxMessages.COOKIE_SEVERAL('sid'));
        expect(res.headers['www-authenticate']).toBeDefined();
      }
      const ok = await t.http.get('/me').set('Cookie', alice.pair);
      expect(ok.status).toBe(200);
      expect(ok.body.username).toBe('alice');
      // The same value sent twice (one cookie under two paths) is not ambiguous.
      const twice = await t.http
        .get('/me')
        .set('Cookie', `${alice.pair}; ${alice.pair}`);
      expect(twice.status).toBe(200);
    });
  });
});

describe.each(PLATFORMS)(
  'logout clears only the cookie that authenticated it (%s)',
  (platform) => {
    const t = useTestApp({ platform, knox: { cookie: true } }, async (app) => ({
      alice: await app.createUser('alice'),
      bob: await app.createUser('bob'),
    }));

    it('a header logout (logout, logoutall) leaves a different cookie session alone', async () => {
      const cookie = await cookieLogin(t, 'bob');
      for (const route of ['/auth/logout', '/auth/logoutall']) {
        const header = await t.app
          .get(KnoxTokenService)
          .create(t.seeded.alice, { name: 'cli' });
        const res = await t.http
          .post(route)
          .set('Authorization', bearer(header.token))
          .set('Cookie', cookie.pair);
        expect(res.status).toBe(204);
        expect({ route, setCookie: res.headers['set-cookie'] }).toEqual({
          route,
          setCookie: undefined,
        });
        expect(await rowOf(t, header.token)).toBeUndefined();
        // Bob's cookie session is neither revoked nor cleared.
        expect(await rowOf(t, cookie.value)).toBeDefined();
        const me = await t.http.get('/me').set('Cookie', cookie.pair);
        expect(me.status).toBe(200);
        expect(me.body.username).toBe('bob');
      }
    });

    it('a cookie logout still clears the cookie', async () => {
      const cookie = await cookieLogin(t, 'alice');
      const res = await t.http
        .post('/auth/logout')
        .set('Host', HOST)
        .set('Origin', SAME)
        .set('Cookie', cookie.pair);
      expect(res.status).toBe(204);
      const cleared = (res.headers['set-cookie'] as unknown as string[])[0];
      expect(cleared).toMatch(/^__Host-knox_token=; Max-Age=0;/);
      expect(await rowOf(t, cookie.value)).toBeUndefined();
    });
  },
);
