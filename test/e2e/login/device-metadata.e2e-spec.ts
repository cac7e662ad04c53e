/**
 * Issue 4, per-token data: what login records (name, user agent, client IP honouring
 * `trust proxy`, creation time, expiry, last use) and how it checks the name.
 */
import { beforeEach, describe, expect, it } from '@jest/globals';
import { KnoxEvents } from '../../../lib/index.js';
import { PLATFORMS } from '../../support/platforms.js';
import { createTestApp, useTestApp } from '../../support/test-app.js';
import {
  HOUR,
  MINUTE,
  T0,
  bearer,
  digestOf,
  eventsJson,
  eventsNamed,
  rowOf,
} from '../../support/sessions.js';

const UA =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 19_0 like Mac OS X) KnoxTest/1.0';
const LOCAL = /^(::ffff:)?127\.0\.0\.1$|^::1$/;

describe.each(PLATFORMS)('login records the session (%s)', (platform) => {
  const t = useTestApp({ platform }, (app) => app.createUser('alice'));
  let aliceId: number;
  beforeEach(() => {
    aliceId = t.seeded.id;
  });

  it('stores name, user agent, socket IP, creation, expiry and last use', async () => {
    const res = await t.http
      .post('/auth/login')
      .set('User-Agent', UA)
      .set('X-Forwarded-For', '198.51.100.23')
      .send({
        username: 'alice',
        password: 'secret-password',
        name: "  Alice's iPhone 📱 ",
      });
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body.expiry).toBe(
      new Date(T0.getTime() + 10 * HOUR).toISOString(),
    );
    const token: string = res.body.token;

    const rows = await t.tokenRows();
    expect(rows).toHaveLength(1);
    const row = rows[0];
    expect(row.digest).toBe(digestOf(token));
    expect(row.id).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    );
    expect(row.name).toBe("Alice's iPhone 📱");
    expect(row.user_agent).toBe(UA);
    // Proxies are not trusted by default: X-Forwarded-For is ignored.
    expect(row.ip).toMatch(LOCAL);
    expect(row.created).toEqual(T0);
    expect(row.expiry).toEqual(new Date(T0.getTime() + 10 * HOUR));
    expect(row.last_used_at).toEqual(T0);
    expect(row.retired_at).toBeNull();
    expect(row.abilities).toBeNull();
    expect(row.last_used_ip).toBe(row.ip);

    const [loginEvent] = eventsNamed(t, KnoxEvents.LOGIN);
    expect(loginEvent).toEqual({
      userId: aliceId,
      tokenId: row.id,
      tokenKey: token.slice(0, 15),
      ip: row.ip,
      userAgent: UA,
      expiry: row.expiry,
      name: "Alice's iPhone 📱",
      abilities: null,
    });
    expect(eventsJson(t)).not.toContain(token);
  });

  it('records the last use later, and a token without a name has name null', async () => {
    const res = await t.http
      .post('/auth/login')
      .send({ username: 'alice', password: 'secret-password' });
    expect(res.status).toBe(200);
    const token: string = res.body.token;
    expect((await rowOf(t, token)).name).toBeNull();

    t.clock.advance(5 * MINUTE);
    const me = await t.http.get('/me').set('Authorization', bearer(token));
    expect(me.status).toBe(200);
    const row = await rowOf(t, token);
    expect(row.last_used_at).toEqual(new Date(T0.getTime() + 5 * MINUTE));
    expect(row.created).toEqual(T0);
  });

  it('accepts a name of exactly the maximum length (100) and a null name', async () => {
    const name = 'x'.repeat(100);
    const ok = await t.http
      .post('/auth/login')
      .send({ username: 'alice', password: 'secret-password', name });
    expect(ok.status).toBe(200);
    // A later creation, for the rows' order: MariaDB orders rows of equal `created` as it likes.
    t.clock.advance(1);
    const nul = await t.http
      .post('/auth/login')
      .send({ username: 'alice', password: 'secret-password', name: null });
    expect(nul.status).toBe(200);
    const names = (await t.tokenRows()).map((r) => r.name);
    expect(names).toEqual([name, null]);
  });

  it.each([
    ['too long', 'x'.repeat(101)],
    ['a number', 42],
    ['a boolean', true],
    ['an object', { first: 'x' }],
    ['an array', ['phone']],
    ['empty', ''],
    ['only spaces', '   '],
    ['a NUL', 'phone\u0000'],
    ['a newline', 'line\nbreak'],
    ['a tab', 'tab\there'],
    ['DEL', 'del\u007f'],
    ['a C1 control', 'c1\u0085'],
    ['a bidi override', 'evil\u202egnp.exe'],
    ['a line separator', 'a\u2028b'],
    ['a lone surrogate', 'half \ud83d'],
  ])(
    'refuses a name that is %s: 400 naming `name`, no token',
    async (_label, name) => {
      const res = await t.http
        .post('/auth/login')
        .set('Content-Type', 'application/json')
        .send(
          JSON.stringify({
            username: 'alice',
            password: 'secret-password',
            name,
          }),
        );
      expect(res.status).toBe(400);
      expect(res.body).toEqual({
        statusCode: 400,
        error: 'Bad Request',
        message: '`name` must be a string of 1 to 100 printable characters.',
      });
      expect(await t.tokenRows()).toHaveLength(0);
      expect(eventsNamed(t, KnoxEvents.LOGIN)).toHaveLength(0);
    },
  );

  it('checks the name with tokenNameMaxLength', async () => {
    const short = await createTestApp({
      platform,
      knox: { tokenNameMaxLength: 5 },
      keepData: true,
    });
    try {
      const long = await short.http.post('/auth/login').send({
        username: 'alice',
        password: 'secret-password',
        name: 'abcdef',
      });
      expect(long.status).toBe(400);
      expect(long.body.message).toBe(
        '`name` must be a string of 1 to 5 printable characters.',
      );
      const ok = await short.http.post('/auth/login').send({
        username: 'alice',
        password: 'secret-password',
        name: 'abcde',
      });
      expect(ok.status).toBe(200);
    } finally {
      await short.close();
    }
  });

  it('cuts a huge user agent to 512 characters', async () => {
    const agent = 'A'.repeat(4000);
    const res = await t.http
      .post('/auth/login')
      .set('User-Agent', agent)
      .send({ username: 'alice', password: 'secret-password' });
    expect(res.status).toBe(200);
    const [row] = await t.tokenRows();
    expect(row.user_agent).toBe('A'.repeat(512));
  });
});

describe.each(PLATFORMS)(
  'client IP behind a trusted proxy (%s)',
  (platform) => {
    const t = useTestApp({ platform, trustProxy: 'loopback' }, (app) =>
      app.createUser('alice'),
    );

    it('records the address the trusted proxy saw, not a spoofed one further left', async () => {
      const res = await t.http
        .post('/auth/login')
        .set('User-Agent', UA)
        // The client sent "198.51.100.1" itself; the loopback proxy appended the real address.
        .set('X-Forwarded-For', '198.51.100.1, 203.0.113.7')
        .send({
          username: 'alice',
          password: 'secret-password',
          name: 'laptop',
        });
      expect(res.status).toBe(200);
      const row = await rowOf(t, res.body.token);
      expect(row.ip).toBe('203.0.113.7');
      expect(eventsNamed(t, KnoxEvents.LOGIN)[0].ip).toBe('203.0.113.7');

      const list = await t.http
        .get('/auth/tokens')
        .set('Authorization', bearer(res.body.token));
      expect(list.status).toBe(200);
      expect(list.body[0]).toMatchObject({
        name: 'laptop',
        ip: '203.0.113.7',
        userAgent: UA,
      });
    });

    it('IPv6 client addresses fit', async () => {
      const ip = '2001:db8:85a3:1234:5678:8a2e:370:7334';
      const res = await t.http
        .post('/auth/login')
        .set('X-Forwarded-For', ip)
        .send({ username: 'alice', password: 'secret-password' });
      expect(res.status).toBe(200);
      expect((await rowOf(t, res.body.token)).ip).toBe(ip);
    });
  },
);
