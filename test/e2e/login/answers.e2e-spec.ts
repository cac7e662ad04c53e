import { describe, expect, it } from '@jest/globals';
import { PLATFORMS } from '../../support/platforms.js';
import { useTestApp, type TestApp } from '../../support/test-app.js';
import { MESSAGES, basic, expectNoInternals } from '../../support/http.js';

const BASIC_REALM = 'Basic realm="api"';

describe.each(PLATFORMS)('login answers (%s)', (platform) => {
  const t = useTestApp({ platform }, (app) => app.createUser('alice'));

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
      t.http.post('/auth/login').send({ username, password: 'wrong-password' });
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
    ['name an object', json({ ...ok, name: { a: 1 } }), 400, /^`name` must be/],
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
});
