import { describe, expect, it } from '@jest/globals';
import { KnoxEvents } from '../../../lib/index.js';
import { PLATFORMS } from '../../support/platforms.js';
import { login, useTestApp } from '../../support/test-app.js';
import {
  HOUR,
  MESSAGES,
  SECOND,
  basic,
  expectLimitExceeded,
  expectUnauthorized,
  rawGet,
} from '../../support/http.js';

const BASIC_REALM = 'Basic realm="api"';
const credentials = { username: 'alice', password: 'secret-password' };

describe.each(PLATFORMS)('core auth on %s', (platform) => {
  const t = useTestApp({ platform, knox: { tokenLimitPerUser: 3 } }, (app) =>
    app.createUser('alice'),
  );

  const me = (token: string) =>
    t.http.get('/me').set('Authorization', `Token ${token}`);

  it('logs in by HTTP Basic and by JSON body', async () => {
    const byBasic = await t.http
      .post('/auth/login')
      .set('Authorization', basic('alice', 'secret-password'));
    expect(byBasic.status).toBe(200);
    expect(byBasic.body).toEqual({
      expiry: new Date(t.clock.now().getTime() + 10 * HOUR).toISOString(),
      token: expect.stringMatching(/^[0-9a-f]{64}$/),
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    const byBody = await t.http.post('/auth/login').send(credentials);
    expect(byBody.status).toBe(200);
    expect(byBody.body.token).not.toBe(byBasic.body.token);
    expect(await t.tokenRows()).toHaveLength(2);
  });

  it('refuses bad credentials and a token as a credential', async () => {
    expectUnauthorized(
      await t.http
        .post('/auth/login')
        .send({ username: 'alice', password: 'nope' }),
      MESSAGES.BAD_CREDENTIALS,
      BASIC_REALM,
    );
    expectUnauthorized(
      await t.http
        .post('/auth/login')
        .set('Authorization', basic('nobody', 'nope')),
      MESSAGES.BAD_CREDENTIALS,
      BASIC_REALM,
    );
    const token = await login(t, 'alice');
    expectUnauthorized(
      await t.http.post('/auth/login').set('Authorization', `Token ${token}`),
      MESSAGES.NOT_PROVIDED,
      BASIC_REALM,
    );
  });

  it('guards a route: the user on the request with a token, 401 with WWW-Authenticate without', async () => {
    const token = await login(t, 'alice');
    const res = await me(token);
    expect(res.status).toBe(200);
    expect(res.body.username).toBe('alice');
    expectUnauthorized(await t.http.get('/me'), MESSAGES.NOT_PROVIDED);
    expectUnauthorized(
      await t.http.get('/me').set('Authorization', 'Token'),
      MESSAGES.NO_CREDENTIALS,
    );
    expectUnauthorized(
      await t.http.get('/me').set('Authorization', 'Token a b'),
      MESSAGES.SPACES,
    );
    expectUnauthorized(await me(`${token}a`), MESSAGES.INVALID_TOKEN);
    expectUnauthorized(await me(token.slice(0, 14)), MESSAGES.INVALID_TOKEN);
  });

  it('a valid request with no write due: one query, no write', async () => {
    const token = await login(t, 'alice');
    t.clock.advance(10 * SECOND);
    await me(token);
    t.recorder.reset();
    expect((await me(token)).status).toBe(200);
    expect(t.recorder.statements).toHaveLength(1);
    expect(t.recorder.writes).toHaveLength(0);
  });

  it('non-UTF-8 bytes in the header: 401 with WWW-Authenticate; a control character: 4xx', async () => {
    const token = await login(t, 'alice');
    const bytes = await rawGet(
      t.app,
      '/me',
      Buffer.concat([
        Buffer.from('Token '),
        Buffer.from([0xc3, 0x28, 0xff]),
        Buffer.from(token),
      ]),
    );
    expect(bytes.status).toBe(401);
    expect(bytes.headers['www-authenticate']).toBe('Token');
    const control = await rawGet(
      t.app,
      '/me',
      Buffer.concat([
        Buffer.from('Token '),
        Buffer.from([0x01]),
        Buffer.from(token),
      ]),
    );
    expect(control.status).toBeGreaterThanOrEqual(400);
    expect(control.status).toBeLessThan(500);
    const huge = await rawGet(
      t.app,
      '/me',
      Buffer.from(`Token ${'a'.repeat(20_000)}`),
    );
    expect(huge.status).toBe(431);
  });

  it('an expired token: 401 "Invalid token." and knox.token-expired', async () => {
    const token = await login(t, 'alice');
    t.clock.advance(10 * HOUR + SECOND);
    expectUnauthorized(await me(token), MESSAGES.INVALID_TOKEN);
    expect(t.events.map((e) => e.name)).toContain(KnoxEvents.TOKEN_EXPIRED);
    expect(await t.tokenRows()).toHaveLength(0);
  });

  it('logout revokes the token used; logoutall revokes them all', async () => {
    const first = await login(t, 'alice');
    const second = await login(t, 'alice');
    const third = await login(t, 'alice');
    const out = await t.http
      .post('/auth/logout')
      .set('Authorization', `Token ${first}`);
    expect(out.status).toBe(204);
    expectUnauthorized(await me(first), MESSAGES.INVALID_TOKEN);
    expect((await me(second)).status).toBe(200);
    const all = await t.http
      .post('/auth/logoutall')
      .set('Authorization', `Token ${second}`);
    expect(all.status).toBe(204);
    expectUnauthorized(await me(third), MESSAGES.INVALID_TOKEN);
    expect(await t.tokenRows()).toHaveLength(0);
    expect(t.events.map((e) => e.name)).toEqual(
      expect.arrayContaining([KnoxEvents.LOGOUT, KnoxEvents.LOGOUT_ALL]),
    );
  });

  it('the routes without a body take an empty one declared as JSON (clients that always send the header)', async () => {
    const json = (path: string, token: string) =>
      t.http
        .post(path)
        .set('Authorization', `Token ${token}`)
        .set('Content-Type', 'application/json');
    const token = await login(t, 'alice');
    expect((await json('/auth/refresh', token)).status).toBe(200);
    const rotated = await json('/auth/rotate', token);
    expect(rotated.status).toBe(200);
    const fresh = rotated.body.token as string;
    const other = await login(t, 'alice');
    expect((await json('/auth/logoutothers', fresh)).status).toBe(204);
    expectUnauthorized(await me(other), MESSAGES.INVALID_TOKEN);
    expect((await json('/auth/logout', fresh)).status).toBe(204);
    expectUnauthorized(await me(fresh), MESSAGES.INVALID_TOKEN);
    const last = await login(t, 'alice');
    expect((await json('/auth/logoutall', last)).status).toBe(204);
    expectUnauthorized(await me(last), MESSAGES.INVALID_TOKEN);
    // A route that reads a body keeps the platform's answer to an empty JSON one: a 4xx.
    const loginRes = await t.http
      .post('/auth/login')
      .set('Content-Type', 'application/json');
    expect(loginRes.status).toBeGreaterThanOrEqual(400);
    expect(loginRes.status).toBeLessThan(500);
  });

  it('a wrong method: 401 before authentication, 405 after', async () => {
    const token = await login(t, 'alice');
    expectUnauthorized(await t.http.get('/auth/logout'), MESSAGES.NOT_PROVIDED);
    const res = await t.http
      .get('/auth/logout')
      .set('Authorization', `Token ${token}`);
    expect(res.status).toBe(405);
    expect(res.body.message).toBe('Method "GET" not allowed.');
  });

  it('the token limit holds under 20 parallel logins', async () => {
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        t.http.post('/auth/login').send(credentials),
      ),
    );
    expect(answers.filter((r) => r.status === 200)).toHaveLength(3);
    const refused = answers.filter((r) => r.status !== 200);
    expect(refused).toHaveLength(17);
    refused.forEach(expectLimitExceeded);
    expect(await t.tokenRows()).toHaveLength(3);
  });
});
