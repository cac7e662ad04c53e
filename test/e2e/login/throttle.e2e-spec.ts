import {
  afterAll,
  beforeAll,
  beforeEach,
  describe,
  expect,
  it,
  jest,
} from '@jest/globals';
import type { ThrottlerStorage } from '@nestjs/throttler';
import { createTestApp, login, type TestApp } from '../../support/test-app.js';
import { MESSAGES, basic } from '../../support/http.js';

const BASIC_REALM = 'Basic realm="api"';
const TOO_MANY = /^Too many login attempts\. Try again in \d+ seconds\.$/;

/** Fakes Date only (the throttler's storage reads Date.now); timers, sockets and pg run for real. */
function fakeDateOnly(): void {
  jest.useFakeTimers({
    now: new Date('2030-01-01T00:00:00Z'),
    doNotFake: [
      'hrtime',
      'nextTick',
      'performance',
      'queueMicrotask',
      'requestAnimationFrame',
      'cancelAnimationFrame',
      'requestIdleCallback',
      'cancelIdleCallback',
      'setImmediate',
      'clearImmediate',
      'setInterval',
      'clearInterval',
      'setTimeout',
      'clearTimeout',
    ],
  });
}

/** No stack trace, file path or internal detail in an error body. */
function expectNoInternals(text: string): void {
  expect(text).not.toMatch(/\n\s+at |node_modules|\.ts:\d|\.js:\d|stack/i);
}

describe.each(['express', 'fastify'] as const)(
  'login throttling, on by default (%s)',
  (platform) => {
    let t: TestApp;
    const attempt = (username: string, ip: string, password = 'wrong') =>
      t.http
        .post('/auth/login')
        .set('X-Forwarded-For', ip)
        .send({ username, password });

    beforeAll(async () => {
      fakeDateOnly();
      // The harness turns throttling off; `undefined` restores the module's default.
      t = await createTestApp({
        platform,
        trustProxy: true,
        knox: { loginThrottle: undefined },
      });
      for (const name of ['alice', 'bob', 'carol', 'dave', 'erin']) {
        await t.createUser(name);
      }
    });
    afterAll(async () => {
      await t.close();
      jest.useRealTimers();
    });

    it('per username: the 11th attempt within a minute is 429 with Retry-After, from any IP, in any case', async () => {
      for (let i = 1; i <= 10; i += 1) {
        const res = await attempt('alice', `10.1.0.${i}`);
        expect(res.status).toBe(401);
      }
      t.recorder.reset();
      const blocked = await attempt('alice', '10.1.0.99', 'secret-password');
      expect(blocked.status).toBe(429);
      expect(blocked.headers['retry-after']).toBe('60');
      expect(blocked.body).toEqual({
        statusCode: 429,
        message: 'Too many login attempts. Try again in 60 seconds.',
        error: 'Too Many Requests',
      });
      // Refused before the credentials are checked: no database work.
      expect(t.recorder.queries).toHaveLength(0);
      const shouting = await attempt('ALICE', '10.1.0.100', 'secret-password');
      expect(shouting.status).toBe(429);
      // Another user from the same address is not affected.
      const bob = await attempt('bob', '10.1.0.99', 'secret-password');
      expect(bob.status).toBe(200);
      expect(await t.tokenRows()).toHaveLength(1);
    });

    it('the block lifts when Retry-After has passed', async () => {
      jest.setSystemTime(Date.now() + 59_000);
      const still = await attempt('alice', '10.1.0.101', 'secret-password');
      expect(still.status).toBe(429);
      expect(still.headers['retry-after']).toBe('1');
      jest.setSystemTime(Date.now() + 1_000);
      const again = await attempt('alice', '10.1.0.101', 'secret-password');
      expect(again.status).toBe(200);
      expect(again.body.token).toMatch(/^[0-9a-f]{64}$/);
    });

    it('per IP: the 31st attempt from one address is 429, whatever the usernames; other addresses are not affected', async () => {
      for (let i = 1; i <= 30; i += 1) {
        const res = await attempt(`nobody-${i}`, '10.2.0.1');
        expect(res.status).toBe(401);
      }
      const blocked = await attempt('carol', '10.2.0.1', 'secret-password');
      expect(blocked.status).toBe(429);
      expect(blocked.body.message).toMatch(TOO_MANY);
      expect(Number(blocked.headers['retry-after'])).toBe(60);
      const elsewhere = await attempt('carol', '10.2.0.2', 'secret-password');
      expect(elsewhere.status).toBe(200);
      // The blocked address did not spend carol's per-username budget.
      for (let i = 3; i <= 11; i += 1) {
        const res = await attempt('carol', `10.2.0.${i}`, 'secret-password');
        expect(res.status).toBe(200);
      }
      expect(
        (await attempt('carol', '10.2.0.12', 'secret-password')).status,
      ).toBe(429);
    });

    it('successful logins count too (10 per username per minute); HTTP Basic logins are throttled alike', async () => {
      for (let i = 1; i <= 10; i += 1) {
        const res = await t.http
          .post('/auth/login')
          .set('X-Forwarded-For', `10.3.0.${i}`)
          .set('Authorization', basic('dave', 'secret-password'));
        expect(res.status).toBe(200);
      }
      const res = await t.http
        .post('/auth/login')
        .set('X-Forwarded-For', '10.3.0.11')
        .set('Authorization', basic('dave', 'secret-password'));
      expect(res.status).toBe(429);
      expect(res.headers['retry-after']).toBe('60');
    });

    it('an unknown username is throttled exactly like a known one (no enumeration through 429s)', async () => {
      const answers = async (username: string, net: string) => {
        const out: string[] = [];
        for (let i = 1; i <= 11; i += 1) {
          const res = await attempt(username, `${net}.${i}`);
          out.push(`${res.status} ${res.text}`);
        }
        return out;
      };
      const known = await answers('erin', '10.4.0');
      const unknown = await answers('nobody-at-all', '10.5.0');
      expect(unknown).toEqual(known);
      expect(known.at(-1)).toMatch(/^429 /);
    });
  },
);

describe('login throttling, configured', () => {
  beforeAll(() => fakeDateOnly());
  afterAll(() => {
    jest.useRealTimers();
  });

  it('takes its own limits and window', async () => {
    const t = await createTestApp({
      trustProxy: true,
      knox: {
        loginThrottle: { ttl: 5_000, limitPerUsername: 2, limitPerIp: 3 },
      },
    });
    try {
      await t.createUser('alice');
      const attempt = (username: string, ip: string) =>
        t.http
          .post('/auth/login')
          .set('X-Forwarded-For', ip)
          .send({ username, password: 'wrong' });
      expect((await attempt('alice', '10.0.0.1')).status).toBe(401);
      expect((await attempt('alice', '10.0.0.2')).status).toBe(401);
      const user = await attempt('alice', '10.0.0.3');
      expect(user.status).toBe(429);
      expect(user.headers['retry-after']).toBe('5');
      expect((await attempt('x1', '10.0.0.9')).status).toBe(401);
      expect((await attempt('x2', '10.0.0.9')).status).toBe(401);
      expect((await attempt('x3', '10.0.0.9')).status).toBe(401);
      const ip = await attempt('x4', '10.0.0.9');
      expect(ip.status).toBe(429);
      expect(ip.headers['retry-after']).toBe('5');
      jest.setSystemTime(Date.now() + 5_000);
      expect((await attempt('alice', '10.0.0.3')).status).toBe(401);
    } finally {
      await t.close();
    }
  });

  it('`false` turns it off: 50 failed attempts in a row are all 401', async () => {
    const t = await createTestApp({ knox: { loginThrottle: false } });
    try {
      await t.createUser('alice');
      for (let i = 0; i < 50; i += 1) {
        const res = await t.http
          .post('/auth/login')
          .send({ username: 'alice', password: 'wrong' });
        expect(res.status).toBe(401);
      }
      expect((await login(t, 'alice')).length).toBe(64);
    } finally {
      await t.close();
    }
  });

  it('uses the given @nestjs/throttler storage, keyed by client IP and lower-cased username', async () => {
    const calls: { key: string; ttl: number; limit: number; name: string }[] =
      [];
    const storage: ThrottlerStorage = {
      increment: async (key, ttl, limit, _block, name) => {
        calls.push({ key, ttl, limit, name });
        const totalHits = calls.filter((c) => c.key === key).length;
        return {
          totalHits,
          timeToExpire: 7,
          isBlocked: totalHits > limit,
          timeToBlockExpire: totalHits > limit ? 7 : 0,
        };
      },
    };
    const t = await createTestApp({
      trustProxy: true,
      knox: { loginThrottle: { storage, limitPerUsername: 1 } },
    });
    try {
      await t.createUser('alice');
      const first = await t.http
        .post('/auth/login')
        .set('X-Forwarded-For', '192.0.2.7')
        .send({ username: 'Alice', password: 'secret-password' });
      expect(first.status).toBe(401);
      const second = await t.http
        .post('/auth/login')
        .set('X-Forwarded-For', '192.0.2.7')
        .send({ username: 'alice', password: 'secret-password' });
      expect(second.status).toBe(429);
      expect(second.headers['retry-after']).toBe('7');
      expect(calls.map((c) => [c.key, c.ttl, c.limit])).toEqual([
        ['knox-login:ip:192.0.2.7', 60_000, 30],
        ['knox-login:user:alice', 60_000, 1],
        ['knox-login:ip:192.0.2.7', 60_000, 30],
        ['knox-login:user:alice', 60_000, 1],
      ]);
    } finally {
      await t.close();
    }
  });

  it('a failing storage is a 503 with a clear message, never a login without throttling', async () => {
    const storage: ThrottlerStorage = {
      increment: async () => {
        throw new Error('redis is down');
      },
    };
    const t = await createTestApp({ knox: { loginThrottle: { storage } } });
    try {
      await t.createUser('alice');
      const res = await t.http
        .post('/auth/login')
        .send({ username: 'alice', password: 'secret-password' });
      expect(res.status).toBe(503);
      expect(res.body.message).toBe(MESSAGES.UNAVAILABLE);
      expectNoInternals(res.text);
      expect(res.text).not.toContain('redis');
      expect(await t.tokenRows()).toHaveLength(0);
    } finally {
      await t.close();
    }
  });
});

describe.each(['express', 'fastify'] as const)(
  'login answers (%s)',
  (platform) => {
    let t: TestApp;
    beforeAll(async () => {
      t = await createTestApp({ platform });
      await t.createUser('alice');
    });
    afterAll(() => t.close());
    beforeEach(() => t.recorder.reset());

    /** Everything a client sees but the Date header. */
    const seen = (res: {
      status: number;
      text: string;
      headers: Record<string, unknown>;
    }) => {
      const { date: _date, ...headers } = res.headers;
      return { status: res.status, text: res.text, headers };
    };

    it('a wrong password and an unknown user get the same status, body and headers (JSON body and Basic)', async () => {
      const json = (username: string) =>
        t.http
          .post('/auth/login')
          .send({ username, password: 'wrong-password' });
      const viaBasic = (username: string) =>
        t.http
          .post('/auth/login')
          .set('Authorization', basic(username, 'wrong-password'));
      const wrong = seen(await json('alice'));
      expect(wrong.status).toBe(401);
      expect(JSON.parse(wrong.text)).toEqual({
        statusCode: 401,
        message: MESSAGES.BAD_CREDENTIALS,
        error: 'Unauthorized',
      });
      expect(wrong.headers['www-authenticate']).toBe(BASIC_REALM);
      expect(seen(await json('nobody'))).toEqual(wrong);
      expect(seen(await viaBasic('nobody'))).toEqual(
        seen(await viaBasic('alice')),
      );
      expect(await t.tokenRows()).toHaveLength(0);
    });

    it('token responses carry Cache-Control: no-store and Pragma: no-cache (RFC 6749 §5.1)', async () => {
      const res = await t.http
        .post('/auth/login')
        .send({ username: 'alice', password: 'secret-password' });
      expect(res.status).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['pragma']).toBe('no-cache');
      const rotated = await t.http
        .post('/auth/rotate')
        .set('Authorization', `Token ${res.body.token}`);
      expect(rotated.status).toBe(200);
      expect(rotated.body.token).toMatch(/^[0-9a-f]{64}$/);
      expect(rotated.headers['cache-control']).toBe('no-store');
      expect(rotated.headers['pragma']).toBe('no-cache');
    });

    type Case = [
      description: string,
      send: () => ReturnType<TestApp['http']['post']>,
      status: number,
      message: RegExp,
    ];
    const post = () => t.http.post('/auth/login');
    const json = (body: unknown) => () => post().send(body as object);
    const raw = (type: string, text: string) => () =>
      post().set('Content-Type', type).send(text);
    const ok = { username: 'alice', password: 'secret-password' };
    const cases: Case[] = [
      [
        'username a number',
        json({ ...ok, username: 42 }),
        400,
        /^`username` must be a string\.$/,
      ],
      [
        'username null',
        json({ ...ok, username: null }),
        400,
        /^`username` must be a string\.$/,
      ],
      [
        'username a boolean',
        json({ ...ok, username: true }),
        400,
        /^`username` must be a string\.$/,
      ],
      [
        'username an array',
        json({ ...ok, username: ['alice'] }),
        400,
        /^`username` must be a string\.$/,
      ],
      [
        'username a nested object',
        json({ ...ok, username: { $ne: null } }),
        400,
        /^`username` must be a string\.$/,
      ],
      [
        'password a nested object',
        json({ ...ok, password: { $gt: '' } }),
        400,
        /^`password` must be a string\.$/,
      ],
      [
        'password a number',
        json({ ...ok, password: 1234 }),
        400,
        /^`password` must be a string\.$/,
      ],
      [
        'username missing',
        json({ password: 'x' }),
        400,
        /^`username` is required\.$/,
      ],
      [
        'password missing',
        json({ username: 'alice' }),
        400,
        /^`password` is required\.$/,
      ],
      [
        'username empty',
        json({ ...ok, username: '' }),
        400,
        /^`username` must be between 1 and 150 characters long\.$/,
      ],
      [
        'username of 151 characters',
        json({ ...ok, username: 'a'.repeat(151) }),
        400,
        /^`username` must be between 1 and 150/,
      ],
      [
        'username of 50,000 characters',
        json({ ...ok, username: 'a'.repeat(50_000) }),
        400,
        /^`username` must be between 1 and 150/,
      ],
      [
        'password of 1025 characters',
        json({ ...ok, password: 'p'.repeat(1025) }),
        400,
        /^`password` must be between 1 and 1024/,
      ],
      [
        'username with a NUL',
        json({ ...ok, username: 'ali\u0000ce' }),
        400,
        /^`username` must not contain control characters/,
      ],
      [
        'username with a newline',
        json({ ...ok, username: 'alice\nadmin' }),
        400,
        /^`username` must not contain control characters/,
      ],
      [
        'username with a lone surrogate',
        raw('application/json', '{"username":"\\ud800","password":"x"}'),
        400,
        /^`username` must not contain control characters or invalid Unicode\.$/,
      ],
      [
        'password with a NUL',
        json({ ...ok, password: 'secret\u0000' }),
        400,
        /^`password` must not contain NUL characters\.$/,
      ],
      [
        'name a number',
        json({ ...ok, name: 7 }),
        400,
        /^`name` must be a string of 1 to 100 printable characters\.$/,
      ],
      [
        'name an object',
        json({ ...ok, name: { a: 1 } }),
        400,
        /^`name` must be/,
      ],
      [
        'name too long',
        json({ ...ok, name: 'n'.repeat(101) }),
        400,
        /^`name` must be/,
      ],
      ['name blank', json({ ...ok, name: '   ' }), 400, /^`name` must be/],
      [
        'name with a control character',
        json({ ...ok, name: 'phone\u0007' }),
        400,
        /^`name` must be/,
      ],
      [
        'name with a bidi override',
        json({ ...ok, name: 'evil\u202etxt.exe' }),
        400,
        /^`name` must be/,
      ],
      [
        'the body an array',
        json([ok]),
        400,
        /^The request body must be a JSON object\.$/,
      ],
      [
        'the body nested 5,000 deep',
        raw('application/json', '['.repeat(5000) + ']'.repeat(5000)),
        400,
        /JSON object/,
      ],
    ];

    it.each(cases)(
      '%s: a 4xx naming the field',
      async (_d, send, status, message) => {
        const before = (await t.tokenRows()).length;
        const res = await send();
        expect({ status: res.status, message: res.body?.message }).toEqual({
          status,
          message: expect.stringMatching(message),
        });
        expectNoInternals(res.text);
        expect(await t.tokenRows()).toHaveLength(before);
      },
    );

    it('invalid JSON is a 400 from the body parser, without a stack trace', async () => {
      for (const text of [
        '{"username": "alice", "password": }',
        '{',
        '{"a":1}}',
        "{'username':'alice'}",
      ]) {
        const res = await raw('application/json', text)();
        expect(res.status).toBe(400);
        expect(res.body.statusCode).toBe(400);
        expectNoInternals(res.text);
      }
    });

    it('a body over the parser limit (2 MB) is 413, not a 500', async () => {
      const res = await post()
        .set('Content-Type', 'application/json')
        .send(
          JSON.stringify({
            username: 'alice',
            password: 'x'.repeat(2_000_000),
          }),
        );
      expect(res.status).toBe(413);
      expectNoInternals(res.text);
    });

    it('other content types are a 4xx without a stack trace, and never log in', async () => {
      const before = (await t.tokenRows()).length;
      for (const [type, text] of [
        ['text/plain', 'username=alice&password=secret-password'],
        ['application/xml', '<login><username>alice</username></login>'],
        ['application/octet-stream', '\u0000\u0001\u0002'],
        [
          'multipart/form-data; boundary=x',
          '--x\r\nContent-Disposition: form-data; name="username"\r\n\r\nalice\r\n--x--',
        ],
      ]) {
        const res = await raw(type, text)();
        expect([400, 401, 415]).toContain(res.status);
        expectNoInternals(res.text);
      }
      expect(await t.tokenRows()).toHaveLength(before);
    });
  },
);
