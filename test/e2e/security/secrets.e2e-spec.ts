import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  Controller,
  Get,
  Req,
  UseGuards,
  type LoggerService,
} from '@nestjs/common';
import { KnoxGuard } from '../../../lib/index.js';
import { PLATFORMS } from '../../support/platforms.js';
import { createTestApp, type TestApp } from '../../support/test-app.js';
import { basic } from '../../support/http.js';
import { findSecret } from '../../support/security.js';
import { digestOf } from '../../support/sessions.js';
import { HOUR } from '../../support/time.js';

/** Returns what an app would log or cache if it serialized `request.auth`. */
@Controller('probe')
class SerializedAuthController {
  @UseGuards(KnoxGuard)
  @Get('auth')
  auth(@Req() request: { auth?: unknown }) {
    return { serialized: JSON.stringify(request.auth) };
  }
}

/** knox stores the first 15 characters as `token_key`; the rest is the secret part. */
const secretOf = (token: string) => token.slice(15);

describe.each(
  (['knox', 'checksum'] as const).flatMap((format) =>
    PLATFORMS.map((platform) => [format, platform] as const),
  ),
)('secrets hygiene, %s format (%s)', (tokenFormat, platform) => {
  let t: TestApp;
  const logs: { level: string; message: string }[] = [];
  /** Every plaintext token the app handed out, and every answer it gave. */
  const plaintexts: string[] = [];
  const answers: { status: number; text: string; headers: unknown }[] = [];

  const record = <T extends { status: number; text: string; headers: unknown }>(
    res: T,
  ): T => {
    answers.push({
      status: res.status,
      text: res.text,
      headers: res.headers,
    });
    return res;
  };

  // Booted by hand, not with useTestApp: the beforeAll drives the whole traffic once (with
  // the test's logger installed) and the tests then search what it left behind.
  beforeAll(async () => {
    t = await createTestApp({
      platform,
      knox: { tokenFormat, autoRefresh: true },
      controllers: [SerializedAuthController],
    });
    const logger: LoggerService = {
      log: (m: unknown) => logs.push({ level: 'log', message: String(m) }),
      warn: (m: unknown) => logs.push({ level: 'warn', message: String(m) }),
      error: (m: unknown, ...rest: unknown[]) =>
        logs.push({
          level: 'error',
          message: [m, ...rest].map(String).join(' '),
        }),
      debug: (m: unknown) => logs.push({ level: 'debug', message: String(m) }),
      verbose: (m: unknown) =>
        logs.push({ level: 'verbose', message: String(m) }),
    };
    t.app.useLogger(logger);
    await t.createUser('alice');
    t.recorder.reset();

    // Logins, by JSON body and by HTTP Basic.
    const first = record(
      await t.http.post('/auth/login').send({
        username: 'alice',
        password: 'secret-password',
        name: 'laptop',
      }),
    );
    expect(first.status).toBe(200);
    const byBasic = record(
      await t.http
        .post('/auth/login')
        .set('Authorization', basic('alice', 'secret-password')),
    );
    expect(byBasic.status).toBe(200);
    const token = first.body.token as string;
    const other = byBasic.body.token as string;
    plaintexts.push(token, other);
    const auth = (value: string) => ({ Authorization: `Token ${value}` });

    // Authenticated requests, a refresh after time passed, listing, a rotation.
    expect(record(await t.http.get('/me').set(auth(token))).status).toBe(200);
    t.clock.advance(2 * HOUR);
    expect(record(await t.http.get('/me').set(auth(token))).status).toBe(200);
    expect(
      record(await t.http.post('/auth/refresh').set(auth(token))).status,
    ).toBe(200);
    expect(
      record(await t.http.get('/auth/tokens').set(auth(token))).status,
    ).toBe(200);
    const rotated = record(await t.http.post('/auth/rotate').set(auth(other)));
    expect(rotated.status).toBe(200);
    plaintexts.push(rotated.body.token as string);

    // Errors that carry a token: one character off, a token sent to login, a wrong scheme.
    expect(record(await t.http.get('/me').set(auth(`${token}x`))).status).toBe(
      401,
    );
    expect(
      record(await t.http.get('/me').set(auth(token.slice(0, -1)))).status,
    ).toBe(401);
    expect(
      record(await t.http.post('/auth/login').set(auth(token))).status,
    ).toBe(401);
    expect(
      record(
        await t.http
          .post('/auth/login')
          .send({ username: 'alice', password: token }),
      ).status,
    ).toBe(401);
    expect(
      record(await t.http.get('/me').set('Authorization', `Basic ${token}`))
        .status,
    ).toBe(401);

    // The serialized request.auth.
    expect(
      record(await t.http.get('/probe/auth').set(auth(token))).status,
    ).toBe(200);

    // Logout, a revoked token, logout-all.
    expect(
      record(await t.http.post('/auth/logout').set(auth(token))).status,
    ).toBe(204);
    expect(record(await t.http.get('/me').set(auth(token))).status).toBe(401);
    expect(
      record(await t.http.post('/auth/logoutall').set(auth(rotated.body.token)))
        .status,
    ).toBe(204);
  });

  afterAll(() => t.close());

  it('the test saw real traffic: the logged queries carry parameters (the digests)', () => {
    const params = t.recorder.queries.flatMap((q) => q.parameters ?? []);
    expect(params).toContain(digestOf(plaintexts[0]));
    expect(t.events.map((e) => e.name)).toEqual(
      expect.arrayContaining([
        'knox.login',
        'knox.logout',
        'knox.logout-all',
        'knox.token-refreshed',
        'knox.token-rotated',
      ]),
    );
  });

  it('no plaintext token (nor its secret part) in the logged SQL or its parameters', () => {
    for (const token of plaintexts) {
      expect(findSecret(t.recorder.queries, secretOf(token))).toEqual([]);
    }
  });

  it('no plaintext token in any event payload', () => {
    for (const token of plaintexts) {
      expect(findSecret(t.events, secretOf(token))).toEqual([]);
    }
  });

  it('no plaintext token in any error body or header, nor in the app log', () => {
    const errors = answers.filter((a) => a.status >= 400);
    expect(errors.length).toBeGreaterThanOrEqual(6);
    for (const token of plaintexts) {
      expect(findSecret(errors, secretOf(token))).toEqual([]);
      expect(findSecret(logs, secretOf(token))).toEqual([]);
    }
  });

  it('JSON.stringify(request.auth) has neither the token nor its digest', () => {
    const probe = answers.find((a) => a.text.includes('serialized'))!;
    const serialized = JSON.parse(JSON.parse(probe.text).serialized) as Record<
      string,
      unknown
    >;
    expect(serialized).toEqual(
      expect.objectContaining({
        id: expect.any(String),
        tokenKey: plaintexts[0].slice(0, 15),
        name: 'laptop',
      }),
    );
    expect(serialized).not.toHaveProperty('digest');
    expect(serialized).not.toHaveProperty('user');
    for (const token of plaintexts) {
      expect(probe.text).not.toContain(secretOf(token));
      expect(probe.text).not.toContain(digestOf(token));
    }
  });

  it('the table stores digests only: no column holds a secret part', async () => {
    const rows = await t.dataSource.query('SELECT * FROM knox_authtoken');
    for (const token of plaintexts) {
      expect(findSecret(rows, secretOf(token))).toEqual([]);
    }
  });
});
