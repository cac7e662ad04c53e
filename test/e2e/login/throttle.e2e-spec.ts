import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { ThrottlerStorage } from '@nestjs/throttler';
import { PLATFORMS } from '../../support/platforms.js';
import { createTestApp, login, type TestApp } from '../../support/test-app.js';
import { MESSAGES, basic, expectNoInternals } from '../../support/http.js';
import { MINUTE, T0 } from '../../support/time.js';

const TOO_MANY = /^Too many login attempts\. Try again in \d+ seconds\.$/;

/** Fakes Date only (the throttler's storage reads Date.now); timers, sockets and pg run for real. */
function fakeDateOnly(): void {
  jest.useFakeTimers({
    now: T0,
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

describe.each(PLATFORMS)('login throttling, on by default (%s)', (platform) => {
  // Booted by hand, not with useTestApp: the throttler's counts live in the app and Date is
  // faked for the whole describe; each test uses its own usernames and addresses.
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
});

describe.each(PLATFORMS)('login throttling, configured (%s)', (platform) => {
  beforeAll(() => fakeDateOnly());
  afterAll(() => {
    jest.useRealTimers();
  });

  it('takes its own limits and window', async () => {
    const t = await createTestApp({
      platform,
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
    const t = await createTestApp({
      platform,
      knox: { loginThrottle: false },
    });
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
      platform,
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
        ['knox-login:ip:192.0.2.7', MINUTE, 30],
        ['knox-login:user:alice', MINUTE, 1],
        ['knox-login:ip:192.0.2.7', MINUTE, 30],
        ['knox-login:user:alice', MINUTE, 1],
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
    const t = await createTestApp({
      platform,
      knox: { loginThrottle: { storage } },
    });
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
