import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { LoggerService } from '@nestjs/common';
import fc from 'fast-check';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { digestOf } from '../../support/sessions.js';
import { createTestApp, type TestApp } from '../../support/test-app.js';

/**
 * Property-based fuzzing over HTTP against one app: the Authorization header, the login body
 * (JSON and Basic) and token names. Each property has an oracle for the exact status; on top,
 * no answer is a 5xx, nothing is logged as an error, no promise rejection goes unhandled, and at
 * the end the token table holds exactly the tokens the successful logins returned.
 */

const PASSWORD = 'correct horse battery staple';
const USERS = ['alice', 'bob', 'Alice', 'émile', '李雷', 'a:b'];
const SCHEMES = ['token', 'bearer'];
const NAME_MAX = 100;
/** The rules SECURITY.md states for names and usernames. */
const BAD_NAME = /[\p{Cc}\p{Cs}\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;
const BAD_USERNAME = /[\p{Cc}\p{Cs}]/u;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * Each property runs thousands of requests: on a loaded 2-core machine one took longer than
 * Jest's default 30 s, so these get more time (the assertions are the same).
 */
const FUZZ_TIMEOUT = 180_000;

/** Cases run across all the suites of this file. */
let totalCases = 0;

/**
 * Most cases run on Fastify: on Express the same requests cost ~3 ms each inside Jest's module
 * sandbox (vs ~0.6 ms), and the properties are the same on both.
 */
const PLANS = [
  { platform: 'fastify', header: 5000, login: 3500, names: 1500 },
  { platform: 'express', header: 1000, login: 700, names: 300 },
] as const;

describe.each(PLANS)('fuzzing over HTTP ($platform)', (plan) => {
  let t: TestApp;
  let agent: http.Agent;
  let port: number;
  const errors: string[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  /** Every token a login answered 200 with, and what it was issued for. */
  const issued = new Map<string, { username: string; name: string | null }>();
  const userIds = new Map<string, number>();
  const liveTokens: string[] = [];
  let cases = 0;

  function request(
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: string,
  ): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port, method, path, headers, agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  function expectNo5xx(answer: Answer, input: unknown): void {
    if (answer.status >= 500) {
      throw new Error(
        `${answer.status} for ${JSON.stringify(input)}: ${answer.body}`,
      );
    }
  }

  async function loginRecorded(
    answer: Answer,
    username: string,
    name: string | null,
  ): Promise<void> {
    const token = (JSON.parse(answer.body) as { token: string }).token;
    expect(issued.has(token)).toBe(false);
    issued.set(token, { username, name });
  }

  // Booted by hand, not with useTestApp: the app listens on a port for raw requests, logs
  // through the test's logger, and the tokens issued carry over from test to test (the last
  // tests check every one of them).
  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    t = await createTestApp({ platform: plan.platform });
    const logger: LoggerService = {
      log: () => undefined,
      warn: () => undefined,
      error: (message: unknown) => errors.push(String(message)),
    };
    t.app.useLogger(logger);
    await t.app.listen(0, '127.0.0.1');
    port = (t.app.getHttpServer().address() as AddressInfo).port;
    agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    for (const username of USERS) {
      userIds.set(username, (await t.createUser(username, PASSWORD)).id);
    }
    // A few live tokens for the header fuzzing, in both formats' shapes.
    for (const username of ['alice', 'bob']) {
      const res = await request(
        'POST',
        '/auth/login',
        { 'content-type': 'application/json' },
        JSON.stringify({ username, password: PASSWORD }),
      );
      expect(res.status).toBe(200);
      await loginRecorded(res, username, null);
      liveTokens.push(JSON.parse(res.body).token);
    }
  });

  afterAll(async () => {
    agent?.destroy();
    await t?.close();
    process.off('unhandledRejection', onUnhandled);
  });

  it(
    'the Authorization header: 200 exactly for `<Token|Bearer, any case> <live token>`, otherwise 401 with WWW-Authenticate',
    async () => {
      const headerChar = fc
        .oneof(
          { weight: 6, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
          { weight: 1, arbitrary: fc.constant(0x09) },
          { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }) },
        )
        .map((code) => String.fromCharCode(code));
      const junk = fc.string({ unit: headerChar, maxLength: 120 });
      const scheme = fc.oneof(
        fc.constantFrom(
          'Token',
          'Bearer',
          'token',
          'BEARER',
          'bEaReR',
          'TOKEN',
        ),
        fc.constantFrom('Basic', 'Bearerx', 'Tokens', 'JWT', ''),
        fc.string({ unit: headerChar, maxLength: 10 }),
      );
      const space = fc.constantFrom(' ', '  ', '\t', ' \t ', '');
      const mutated = fc
        .tuple(
          fc.constantFrom(...liveTokens),
          fc.nat(),
          fc.constantFrom('insert', 'delete', 'replace', 'case', 'none'),
          headerChar,
        )
        .map(([token, at, op, c]) => {
          const i = at % token.length;
          if (op === 'insert') return token.slice(0, i) + c + token.slice(i);
          if (op === 'delete') return token.slice(0, i) + token.slice(i + 1);
          if (op === 'replace')
            return token.slice(0, i) + c + token.slice(i + 1);
          if (op === 'case') return token.toUpperCase();
          return token;
        });
      const header = fc.oneof(
        junk,
        fc
          .tuple(space, scheme, space, fc.oneof(mutated, junk), space)
          .map((parts) => parts.join('')),
        fc
          .tuple(scheme, fc.constantFrom(...liveTokens), junk)
          .map(([s, token, tail]) => `${s} ${token}${tail}`),
      );

      await fc.assert(
        fc.asyncProperty(header, async (value) => {
          cases += 1;
          const answer = await request('GET', '/me', { authorization: value });
          expectNo5xx(answer, value);
          const parts = value.split(/[ \t]+/).filter((part) => part.length > 0);
          const ok =
            /^[\t\x20-\x7e]*$/.test(value) &&
            parts.length === 2 &&
            SCHEMES.includes(parts[0].toLowerCase()) &&
            liveTokens.includes(parts[1]);
          if (ok) {
            expect(answer.status).toBe(200);
            const owner = issued.get(parts[1])!.username;
            expect(JSON.parse(answer.body).username).toBe(owner);
          } else {
            expect({ value, status: answer.status }).toEqual({
              value,
              status: 401,
            });
            expect(answer.headers['www-authenticate']).toBe('Token');
            expect(JSON.parse(answer.body)).toEqual({
              statusCode: 401,
              message: expect.any(String),
              error: 'Unauthorized',
            });
          }
        }),
        { numRuns: plan.header, seed: 5005 },
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    'the login body (JSON and HTTP Basic): 200 exactly for valid credentials, 400 naming the field for a bad JSON field, 401 otherwise',
    async () => {
      const text = fc.oneof(
        fc.string({ maxLength: 20 }),
        fc.string({ unit: 'binary', maxLength: 20 }),
        fc.string({ unit: 'grapheme', minLength: 140, maxLength: 200 }),
        fc.constantFrom('', ' ', 'alice ', 'ALICE', '\u0000', 'a\nb', PASSWORD),
      );
      const username = fc.oneof(
        { weight: 3, arbitrary: fc.constantFrom(...USERS) },
        { weight: 2, arbitrary: text },
        { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
      );
      const password = fc.oneof(
        { weight: 3, arbitrary: fc.constant(PASSWORD) },
        { weight: 2, arbitrary: text },
        { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
        {
          weight: 1,
          arbitrary: fc.string({ minLength: 1020, maxLength: 1030 }),
        },
      );
      const name = fc.option(fc.oneof(text, fc.jsonValue({ maxDepth: 1 })), {
        nil: undefined,
      });
      const jsonLogin = fc
        .record({ username, password, name }, { requiredKeys: [] })
        .map((body) => ({ kind: 'json' as const, body: body as unknown }));
      const oddBody = fc
        .oneof(
          fc.jsonValue({ maxDepth: 3 }),
          fc.array(fc.anything({ maxDepth: 1 })),
        )
        .map((body) => ({ kind: 'json' as const, body }));
      const basicLogin = fc
        .record({
          username: fc.oneof(
            fc.constantFrom(...USERS),
            fc.string({ unit: 'binary', maxLength: 20 }),
          ),
          password: fc.oneof(
            fc.constant(PASSWORD),
            fc.string({ unit: 'binary', maxLength: 20 }),
          ),
        })
        .map((credentials) => ({ kind: 'basic' as const, ...credentials }));
      const input = fc.oneof(
        { weight: 5, arbitrary: jsonLogin },
        { weight: 1, arbitrary: oddBody },
        { weight: 2, arbitrary: basicLogin },
      );

      const isString = (v: unknown): v is string => typeof v === 'string';
      const expectedJson = (body: unknown): number => {
        if (body === '') {
          // Fastify hands the JSON string "" over as '', which is also how an empty body
          // arrives: no credentials (401). Express's strict parser refuses it (400).
          return plan.platform === 'fastify' ? 401 : 400;
        }
        if (body === null || typeof body !== 'object' || Array.isArray(body)) {
          // Express's strict JSON parser or the controller: 400 either way.
          return 400;
        }
        const b = body as Record<string, unknown>;
        if (b.username === undefined && b.password === undefined) return 401;
        for (const [field, max, bad] of [
          ['username', 150, BAD_USERNAME],
          ['password', 1024, /\u0000/],
        ] as const) {
          const v = b[field];
          if (!isString(v) || v.length === 0 || v.length > max || bad.test(v)) {
            return 400;
          }
        }
        const n = b.name;
        if (
          n !== undefined &&
          n !== null &&
          (!isString(n) ||
            n.trim().length === 0 ||
            n.length > NAME_MAX ||
            BAD_NAME.test(n))
        ) {
          return 400;
        }
        return userIds.has(b.username as string) && b.password === PASSWORD
          ? 200
          : 401;
      };

      await fc.assert(
        fc.asyncProperty(input, async (login) => {
          cases += 1;
          if (login.kind === 'basic') {
            const encoded = Buffer.from(
              `${login.username}:${login.password}`,
              'utf8',
            );
            // What the server decodes: lone surrogates became U+FFFD on the way.
            const decoded = encoded.toString('utf8');
            const colon = decoded.indexOf(':');
            const user = decoded.slice(0, colon);
            const pass = decoded.slice(colon + 1);
            const valid =
              !decoded.includes('\uFFFD') &&
              user.length > 0 &&
              !BAD_USERNAME.test(user) &&
              !pass.includes('\u0000');
            const answer = await request('POST', '/auth/login', {
              authorization: `Basic ${encoded.toString('base64')}`,
            });
            expectNo5xx(answer, login);
            const expected =
              valid && userIds.has(user) && pass === PASSWORD ? 200 : 401;
            expect({ login, status: answer.status }).toEqual({
              login,
              status: expected,
            });
            if (expected === 200) {
              await loginRecorded(answer, user, null);
            } else {
              expect(answer.headers['www-authenticate']).toBe(
                'Basic realm="api"',
              );
            }
            return;
          }
          const payload = JSON.stringify(login.body) ?? 'null';
          const answer = await request(
            'POST',
            '/auth/login',
            { 'content-type': 'application/json' },
            payload,
          );
          expectNo5xx(answer, login);
          const expected = expectedJson(login.body);
          expect({ payload, status: answer.status }).toEqual({
            payload,
            status: expected,
          });
          const parsed = JSON.parse(answer.body) as Record<string, unknown>;
          if (expected === 200) {
            expect(answer.headers['cache-control']).toBe('no-store');
            const b = login.body as { username: string; name?: unknown };
            await loginRecorded(
              answer,
              b.username,
              typeof b.name === 'string' ? b.name.trim() : null,
            );
          } else if (
            expected === 400 &&
            login.body !== null &&
            typeof login.body === 'object' &&
            !Array.isArray(login.body)
          ) {
            expect(parsed.message).toMatch(/^`(username|password|name)` /);
          }
        }),
        { numRuns: plan.login, seed: 5006 },
      );
    },
    FUZZ_TIMEOUT,
  );

  it(
    'token names: any string is stored exactly (trimmed) or refused 400 naming `name`; never a 5xx',
    async () => {
      const name = fc.oneof(
        fc.string({ unit: 'grapheme', maxLength: 110 }),
        fc.string({ unit: 'binary', maxLength: 110 }),
        fc.string({ unit: 'grapheme-composite', maxLength: 30 }),
        fc
          .tuple(
            fc.string({ maxLength: 3 }),
            fc.constantFrom(
              '\u202e',
              '\u2028',
              '\u0000',
              '\u00a0',
              '\ufeff',
              '😀',
              'é',
              'e\u0301',
              '\r\n',
            ),
          )
          .map(([a, b]) => `${a}${b}${a}`),
        fc.string({ minLength: 95, maxLength: 105 }),
      );
      await fc.assert(
        fc.asyncProperty(
          name,
          fc.constantFrom('alice', 'bob', '李雷'),
          async (value, username) => {
            cases += 1;
            const answer = await request(
              'POST',
              '/auth/login',
              { 'content-type': 'application/json' },
              JSON.stringify({ username, password: PASSWORD, name: value }),
            );
            expectNo5xx(answer, value);
            const valid =
              value.trim().length > 0 &&
              value.length <= NAME_MAX &&
              !BAD_NAME.test(value);
            expect({ value, status: answer.status }).toEqual({
              value,
              status: valid ? 200 : 400,
            });
            if (valid) {
              await loginRecorded(answer, username, value.trim());
            } else {
              expect(JSON.parse(answer.body).message).toBe(
                '`name` must be a string of 1 to 100 printable characters.',
              );
            }
          },
        ),
        { numRuns: plan.names, seed: 5007 },
      );
    },
    FUZZ_TIMEOUT,
  );

  it('afterwards: every case ran, no 5xx, no error logged, no unhandled rejection, and the table holds exactly the issued tokens', async () => {
    expect(cases).toBe(plan.header + plan.login + plan.names);
    totalCases += cases;
    expect(errors).toEqual([]);
    expect(unhandled).toEqual([]);
    const rows = (await t.dataSource.query(
      'SELECT digest, user_id, name FROM knox_authtoken',
    )) as { digest: string; user_id: number; name: string | null }[];
    const expected = [...issued].map(([token, { username, name }]) => ({
      digest: digestOf(token),
      user_id: userIds.get(username),
      name,
    }));
    const byDigest = (a: { digest: string }, b: { digest: string }) =>
      a.digest.localeCompare(b.digest);
    expect(rows.sort(byDigest)).toEqual(expected.sort(byDigest));
    expect(issued.size).toBeGreaterThan(plan.names / 2);
  });
});

describe('fuzzing in total', () => {
  it('ran at least 10,000 generated cases', () => {
    expect(totalCases).toBeGreaterThanOrEqual(10_000);
  });
});
