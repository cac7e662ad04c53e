import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PLATFORMS } from '../../support/platforms.js';
import {
  createTestApp,
  login,
  useTestApp,
  type TestApp,
} from '../../support/test-app.js';
import { MESSAGES, expectUnauthorized } from '../../support/http.js';
import { inBatches, scannerPattern } from '../../support/security.js';
import { digestOf } from '../../support/sessions.js';

describe('token formats', () => {
  it("knox's format stays the default: 64 lowercase hex characters", async () => {
    const t = await createTestApp();
    try {
      await t.createUser('alice');
      const token = await login(t, 'alice');
      expect(token).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      await t.close();
    }
  });

  describe("tokenFormat: 'checksum'", () => {
    const t = useTestApp({ knox: { tokenFormat: 'checksum' } }, (app) =>
      app.createUser('alice'),
    );

    it('issues knox_ + 49 base62 characters that the documented scanner regex finds, and they authenticate', async () => {
      const token = await login(t, 'alice');
      expect(token).toMatch(/^knox_[0-9A-Za-z]{49}$/);
      expect(`leaked: "${token}".`.match(scannerPattern('knox_'))).toEqual([
        token,
      ]);
      const me = await t.http.get('/me').set('Authorization', `Token ${token}`);
      expect(me.status).toBe(200);
      expect(me.body.username).toBe('alice');
      const row = (await t.tokenRows()).find(
        (r) => r.digest === digestOf(token),
      );
      expect(row?.token_key).toBe(token.slice(0, 15));
    });

    it('a typo in the checksum is refused as "Invalid token." without a query', async () => {
      const token = await login(t, 'alice');
      const last = token.at(-1) === 'a' ? 'b' : 'a';
      t.recorder.reset();
      const res = await t.http
        .get('/me')
        .set('Authorization', `Token ${token.slice(0, -1)}${last}`);
      expectUnauthorized(res, MESSAGES.INVALID_TOKEN);
      expect(t.recorder.queries).toHaveLength(0);
    });

    it('takes a custom prefix, and the scanner regex for it', async () => {
      const custom = await createTestApp({
        knox: { tokenFormat: 'checksum', tokenPrefix: 'myapp_' },
      });
      try {
        await custom.createUser('bob');
        const token = await login(custom, 'bob');
        expect(token).toMatch(/^myapp_[0-9A-Za-z]{49}$/);
        expect(`${token}\n`.match(scannerPattern('myapp_'))).toEqual([token]);
        const me = await custom.http
          .get('/me')
          .set('Authorization', `Bearer ${token}`);
        expect(me.status).toBe(200);
      } finally {
        await custom.close();
      }
    });

    it('refuses at boot a prefix scanners could not anchor on', async () => {
      for (const tokenPrefix of ['ab_', 'myapp', 'my app_']) {
        await expect(
          createTestApp({ knox: { tokenFormat: 'checksum', tokenPrefix } }),
        ).rejects.toThrow(/tokenPrefix/);
      }
    });
  });

  it('switching the format keeps the tokens issued in the other one working, both ways', async () => {
    const first = await createTestApp({ knox: { tokenFormat: 'knox' } });
    let knoxToken: string;
    try {
      await first.createUser('alice');
      knoxToken = await login(first, 'alice');
    } finally {
      await first.close();
    }
    const second = await createTestApp({
      knox: { tokenFormat: 'checksum' },
      keepData: true,
    });
    let checksumToken: string;
    try {
      const old = await second.http
        .get('/me')
        .set('Authorization', `Token ${knoxToken}`);
      expect(old.status).toBe(200);
      expect(old.body.username).toBe('alice');
      checksumToken = await login(second, 'alice');
      expect(checksumToken).toMatch(/^knox_[0-9A-Za-z]{49}$/);
    } finally {
      await second.close();
    }
    const third = await createTestApp({ keepData: true });
    try {
      for (const token of [knoxToken, checksumToken]) {
        const res = await third.http
          .get('/me')
          .set('Authorization', `Token ${token}`);
        expect(res.status).toBe(200);
      }
      expect(await login(third, 'alice')).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      await third.close();
    }
  });
});

describe('tokenPrefix', () => {
  it('a token made before the prefix was set still works; new tokens carry TEST_ and work', async () => {
    const before = await createTestApp();
    let oldToken: string;
    try {
      await before.createUser('alice');
      oldToken = await login(before, 'alice');
      expect(oldToken).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      await before.close();
    }

    const t = await createTestApp({
      knox: { tokenPrefix: 'TEST_' },
      keepData: true,
    });
    try {
      const old = await t.http
        .get('/me')
        .set('Authorization', `Token ${oldToken}`);
      expect(old.status).toBe(200);
      expect(old.body.username).toBe('alice');

      const token = await login(t, 'alice');
      expect(token).toMatch(/^TEST_[0-9a-f]{64}$/);
      const rows = await t.tokenRows();
      expect(rows.map((r) => r.token_key)).toContain(token.slice(0, 15));
      const res = await t.http
        .get('/me')
        .set('Authorization', `Token ${token}`);
      expect(res.status).toBe(200);
      expect(res.body.username).toBe('alice');
      // The token without its prefix is another token.
      expectUnauthorized(
        await t.http.get('/me').set('Authorization', `Token ${token.slice(5)}`),
        MESSAGES.INVALID_TOKEN,
      );
    } finally {
      await t.close();
    }
  });
});

/** Hundreds of tokens of the wrong length, alphabet or checksum, built from real ones. */
function malformedTokens(knoxToken: string, checksumToken: string): string[] {
  const out: string[] = [];
  // Knox format: too short, too long, a non-hex character anywhere.
  for (let n = 1; n < 64; n += 2) out.push(knoxToken.slice(0, n));
  out.push('0123456789a' + knoxToken, knoxToken.repeat(2), 'x'.repeat(64));
  for (let i = 0; i < 64; i += 1) {
    for (const c of ['g', 'G', 'Z', '-']) {
      out.push(knoxToken.slice(0, i) + c + knoxToken.slice(i + 1));
    }
  }
  out.push(knoxToken.toUpperCase());
  // Checksum format: any one character changed, too short, too long, another alphabet.
  for (let i = 0; i < checksumToken.length; i += 1) {
    for (const c of ['A', '7']) {
      if (checksumToken[i] !== c) {
        out.push(checksumToken.slice(0, i) + c + checksumToken.slice(i + 1));
      }
    }
  }
  for (let n = 1; n < checksumToken.length; n += 3) {
    out.push(checksumToken.slice(0, n), checksumToken.slice(n));
  }
  out.push(checksumToken + 'A', 'knox_' + checksumToken);
  for (const c of ['+', '/', '=', '-', '.', '~']) {
    out.push(checksumToken.slice(0, 20) + c + checksumToken.slice(21));
  }
  // Latin-1 letters and printable junk.
  out.push('é'.repeat(64), `${knoxToken.slice(0, 63)}é`, '!'.repeat(70));
  return out;
}

describe.each(PLATFORMS)('a flood of malformed tokens (%s)', (platform) => {
  // Booted by hand, not with useTestApp: a checksum-format app issues one token and closes,
  // then a knox-format app over the same rows (keepData) listens once for both floods.
  let t: TestApp;
  let knoxToken: string;
  let checksumToken: string;
  beforeAll(async () => {
    const issuer = await createTestApp({
      platform,
      knox: { tokenFormat: 'checksum' },
    });
    await issuer.createUser('alice');
    checksumToken = await login(issuer, 'alice');
    await issuer.close();
    t = await createTestApp({ platform, keepData: true });
    // Listening once spares supertest a listen() per request.
    await t.app.listen(0, '127.0.0.1');
    knoxToken = await login(t, 'alice');
  });
  afterAll(() => t.close());

  it('is refused 401 with WWW-Authenticate and costs ZERO database queries', async () => {
    const tokens = malformedTokens(knoxToken, checksumToken);
    expect(tokens.length).toBeGreaterThanOrEqual(400);
    t.recorder.reset();
    const answers = await inBatches(tokens, 16, async (token) => {
      const res = await t.http
        .get('/me')
        .set('Authorization', `Token ${token}`);
      return {
        token,
        status: res.status,
        www: res.headers['www-authenticate'],
        message: res.body?.message,
      };
    });
    const unexpected = answers.filter(
      (a) =>
        a.status !== 401 ||
        a.www !== 'Token' ||
        (a.message !== MESSAGES.INVALID_TOKEN &&
          a.message !== MESSAGES.MALFORMED_HEADER),
    );
    expect(unexpected).toEqual([]);
    expect(t.recorder.queries).toHaveLength(0);
  });

  it('while well-formed unknown tokens do reach the database (the count is real)', async () => {
    t.recorder.reset();
    const unknown = 'f'.repeat(64);
    expectUnauthorized(
      await t.http.get('/me').set('Authorization', `Token ${unknown}`),
      MESSAGES.INVALID_TOKEN,
    );
    expect(t.recorder.queries.length).toBeGreaterThanOrEqual(1);
    for (const token of [knoxToken, checksumToken]) {
      const res = await t.http
        .get('/me')
        .set('Authorization', `Token ${token}`);
      expect(res.status).toBe(200);
    }
  });
});
