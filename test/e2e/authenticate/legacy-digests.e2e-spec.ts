/**
 * `legacyTokenDigests`: tokens stored under an earlier hashing scheme keep working, and each
 * row moves to the current digest on its first use, in the write a request may cause anyway.
 */
import { describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { KnoxEvents } from '../../../lib/index.js';
import type { TestUser } from '../../support/fixtures.js';
import { MESSAGES, expectUnauthorized } from '../../support/http.js';
import {
  HOUR,
  MINUTE,
  T0,
  bearer,
  digestOf,
  eventsNamed,
} from '../../support/sessions.js';
import { login, useTestApp, type TestApp } from '../../support/test-app.js';
import { TEST_DB, sql } from '../../support/test-db.js';
import { dateParam, idColumn, tokenRow } from '../../support/token-rows.js';

/** A made-up earlier scheme: SHA-512 of the hex-decoded token (hex tokens only). */
function legacyDigest(token: string): string | null {
  return /^[0-9a-f]{64}$/.test(token)
    ? createHash('sha512').update(Buffer.from(token, 'hex')).digest('hex')
    : null;
}

const hexToken = (): string => randomBytes(32).toString('hex');

/** Inserts a row as the earlier scheme stored it: knox's columns, the legacy digest. */
async function insertLegacy(
  t: TestApp,
  user: TestUser,
  options: {
    token?: string;
    created?: Date;
    expiry?: Date | null;
    lastUsedAt?: Date | null;
  } = {},
): Promise<{ token: string; id: string }> {
  const token = options.token ?? hexToken();
  const created = options.created ?? new Date(T0.getTime() - HOUR);
  const expiry =
    options.expiry !== undefined
      ? options.expiry
      : new Date(T0.getTime() + 9 * HOUR);
  // The id is read back by digest: MySQL/MariaDB and SQLite have no RETURNING for this.
  const id = idColumn();
  await t.dataSource.query(
    sql(`INSERT INTO knox_authtoken (digest, token_key, user_id, created, expiry, last_used_at${id.column})
     VALUES ($1, $2, $3, $4, $5, $6${id.values.map((_, i) => `, $${7 + i}`).join('')})`),
    [
      legacyDigest(token),
      token.slice(0, 15),
      user.id,
      dateParam(created),
      dateParam(expiry),
      dateParam(options.lastUsedAt ?? null),
      ...id.values,
    ],
  );
  const [row] = await t.dataSource.query(
    sql(`SELECT id FROM knox_authtoken WHERE digest = $1`),
    [legacyDigest(token)],
  );
  return { token, id: row.id as string };
}

/** The rows stored under the token's current and legacy digests. */
async function rowsOf(
  t: TestApp,
  token: string,
): Promise<{ current: Record<string, any>[]; legacy: Record<string, any>[] }> {
  const select = sql(`SELECT * FROM knox_authtoken WHERE digest = $1`);
  const rows = async (digest: string | null) =>
    ((await t.dataSource.query(select, [digest])) as Record<string, any>[]).map(
      tokenRow,
    );
  return {
    current: await rows(digestOf(token)),
    legacy: await rows(legacyDigest(token)),
  };
}

const me = (t: TestApp, token: string) =>
  t.http.get('/me').set('Authorization', bearer(token));

describe('legacyTokenDigests', () => {
  const t = useTestApp(
    { knox: { legacyTokenDigests: [legacyDigest] } },
    async (app) => ({
      alice: await app.createUser('alice'),
      bob: await app.createUser('bob'),
    }),
  );

  it('a row stored under a legacy digest authenticates, and moves to the current digest in one UPDATE', async () => {
    const { token, id } = await insertLegacy(t, t.seeded.alice);
    t.recorder.reset();
    const res = await me(t, token);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      id: t.seeded.alice.id,
      username: 'alice',
      tokenId: id,
    });
    // MySQL/MariaDB have no UPDATE … RETURNING: the touch reads its row back (docs/database.md).
    expect(t.recorder.statements.map((sql) => sql.split(' ')[0])).toEqual(
      TEST_DB === 'mariadb'
        ? ['SELECT', 'UPDATE', 'SELECT']
        : ['SELECT', 'UPDATE'],
    );
    expect(t.recorder.writes).toHaveLength(1);

    const { current, legacy } = await rowsOf(t, token);
    expect(legacy).toHaveLength(0);
    expect(current).toHaveLength(1);
    expect(current[0]).toMatchObject({
      id,
      token_key: token.slice(0, 15),
      user_id: t.seeded.alice.id,
      created: new Date(T0.getTime() - HOUR),
      expiry: new Date(T0.getTime() + 9 * HOUR),
      last_used_at: T0,
    });
    expect(await t.tokenRows()).toHaveLength(1);
    // The upgrade is no event of its own.
    expect(t.events).toEqual([]);
  });

  it('after the upgrade the token keeps working, found by the current digest: one query, no write', async () => {
    const { token } = await insertLegacy(t, t.seeded.alice);
    expect((await me(t, token)).status).toBe(200);
    t.recorder.reset();
    const res = await me(t, token);
    expect(res.status).toBe(200);
    expect(t.recorder.statements).toHaveLength(1);
    expect(t.recorder.writes).toEqual([]);
    t.clock.advance(5 * HOUR);
    expect((await me(t, token)).status).toBe(200);
    expect((await rowsOf(t, token)).current).toHaveLength(1);
  });

  it('a legacy row is upgraded even when no lastUsedAt write is due', async () => {
    const { token, id } = await insertLegacy(t, t.seeded.alice, {
      lastUsedAt: T0,
    });
    t.recorder.reset();
    expect((await me(t, token)).status).toBe(200);
    expect(t.recorder.writes).toHaveLength(1);
    expect(t.recorder.writes[0]).toMatch(/^UPDATE/);
    const { current, legacy } = await rowsOf(t, token);
    expect(legacy).toHaveLength(0);
    expect(current.map((r) => r.id)).toEqual([id]);
  });

  it('a token with the current digest still costs exactly one query', async () => {
    const token = await login(t, 'alice');
    t.recorder.reset();
    const res = await me(t, token);
    expect(res.status).toBe(200);
    expect(t.recorder.statements).toHaveLength(1);
    expect(t.recorder.statements[0]).toMatch(/^SELECT .* IN \(/s);
  });

  it('10 concurrent first uses of one legacy token all succeed and leave one upgraded row', async () => {
    const tokens = [];
    for (let i = 0; i < 3; i++) {
      tokens.push(await insertLegacy(t, t.seeded.alice));
    }
    for (const { token, id } of tokens) {
      const answers = await Promise.all(
        Array.from({ length: 10 }, () => me(t, token)),
      );
      expect(answers.map((res) => res.status)).toEqual(Array(10).fill(200));
      expect(answers.every((res) => res.body.tokenId === id)).toBe(true);
      const { current, legacy } = await rowsOf(t, token);
      expect(legacy).toHaveLength(0);
      expect(current.map((r) => r.id)).toEqual([id]);
    }
    expect(await t.tokenRows()).toHaveLength(3);
  });

  it('a legacy token can log out: 204, its row deleted, the others kept', async () => {
    const first = await insertLegacy(t, t.seeded.alice);
    const second = await insertLegacy(t, t.seeded.alice);
    const res = await t.http
      .post('/auth/logout')
      .set('Authorization', bearer(first.token));
    expect(res.status).toBe(204);
    expect((await t.tokenRows()).map((r) => r.id)).toEqual([second.id]);
    expect(eventsNamed(t, KnoxEvents.LOGOUT)).toEqual([
      expect.objectContaining({ userId: t.seeded.alice.id, tokenId: first.id }),
    ]);
    expectUnauthorized(await me(t, first.token), MESSAGES.INVALID_TOKEN);
    expect((await me(t, second.token)).status).toBe(200);
  });

  it("a legacy token can log out everywhere: legacy and current rows of the user go, bob's stay", async () => {
    const legacy = await insertLegacy(t, t.seeded.alice);
    const untouched = await insertLegacy(t, t.seeded.alice);
    const current = await login(t, 'alice');
    const bobs = await login(t, 'bob');
    const res = await t.http
      .post('/auth/logoutall')
      .set('Authorization', bearer(legacy.token));
    expect(res.status).toBe(204);
    const rows = await t.tokenRows();
    expect(rows).toHaveLength(1);
    expect(rows[0].digest).toBe(digestOf(bobs));
    for (const token of [legacy.token, untouched.token, current]) {
      expectUnauthorized(await me(t, token), MESSAGES.INVALID_TOKEN);
    }
  });

  it('a legacy token lists the sessions, itself flagged current, legacy and current rows alike', async () => {
    const legacy = await insertLegacy(t, t.seeded.alice, {
      created: new Date(T0.getTime() - 2 * HOUR),
    });
    const other = await insertLegacy(t, t.seeded.alice);
    await login(t, 'alice');
    const res = await t.http
      .get('/auth/tokens')
      .set('Authorization', bearer(legacy.token));
    expect(res.status).toBe(200);
    expect(res.body).toHaveLength(3);
    const byId = new Map(
      (res.body as { id: string; current: boolean }[]).map((s) => [s.id, s]),
    );
    expect(byId.get(legacy.id)?.current).toBe(true);
    expect(byId.get(other.id)?.current).toBe(false);
    expect(JSON.stringify(res.body)).not.toContain(legacyDigest(legacy.token));
    expect(JSON.stringify(res.body)).not.toContain(digestOf(legacy.token));
  });

  it('a legacy token can rotate: the new token works, the old one is revoked', async () => {
    const { token } = await insertLegacy(t, t.seeded.alice);
    const res = await t.http
      .post('/auth/rotate')
      .set('Authorization', bearer(token));
    expect(res.status).toBe(200);
    expectUnauthorized(await me(t, token), MESSAGES.INVALID_TOKEN);
    expect((await me(t, res.body.token)).status).toBe(200);
    expect(await t.tokenRows()).toHaveLength(1);
  });

  it('an expired legacy row: 401 "Invalid token.", the row deleted, token-expired fires', async () => {
    const { token, id } = await insertLegacy(t, t.seeded.alice, {
      created: new Date(T0.getTime() - 11 * HOUR),
      expiry: new Date(T0.getTime() - MINUTE),
    });
    expectUnauthorized(await me(t, token), MESSAGES.INVALID_TOKEN);
    expect(await t.tokenRows()).toHaveLength(0);
    expect(eventsNamed(t, KnoxEvents.TOKEN_EXPIRED)).toEqual([
      expect.objectContaining({ userId: t.seeded.alice.id, tokenId: id }),
    ]);
  });

  it('an inactive user: 401 "User inactive or deleted.", the row left as it was', async () => {
    const carol = await t.createUser('carol', 'secret-password', false);
    const { token } = await insertLegacy(t, carol);
    t.recorder.reset();
    expectUnauthorized(await me(t, token), MESSAGES.USER_INACTIVE);
    expect(t.recorder.writes).toEqual([]);
    expect((await rowsOf(t, token)).legacy).toHaveLength(1);
  });

  it('an unknown token: 401 after the one SELECT, nothing written', async () => {
    t.recorder.reset();
    expectUnauthorized(await me(t, hexToken()), MESSAGES.INVALID_TOKEN);
    expect(t.recorder.statements).toHaveLength(1);
    expect(t.recorder.writes).toEqual([]);
  });

  it('the legacy digest presented as a token is not accepted', async () => {
    const { token } = await insertLegacy(t, t.seeded.alice);
    // A stored digest is no credential: neither its hex nor its first 64 characters.
    const stored = legacyDigest(token)!;
    expectUnauthorized(
      await me(t, stored.slice(0, 64)),
      MESSAGES.INVALID_TOKEN,
    );
    expect((await rowsOf(t, token)).legacy).toHaveLength(1);
  });
});

describe('legacyTokenDigests: the upgrade shares the auto-refresh write', () => {
  const t = useTestApp(
    { knox: { legacyTokenDigests: [legacyDigest], autoRefresh: true } },
    async (app) => ({ alice: await app.createUser('alice') }),
  );

  it('one UPDATE moves the digest, the expiry and the last use; token-refreshed fires', async () => {
    const { token, id } = await insertLegacy(t, t.seeded.alice, {
      created: T0,
      expiry: new Date(T0.getTime() + 10 * HOUR),
      lastUsedAt: T0,
    });
    t.clock.advance(5 * HOUR);
    t.recorder.reset();
    expect((await me(t, token)).status).toBe(200);
    expect(t.recorder.writes).toHaveLength(1);
    const [row] = (await rowsOf(t, token)).current;
    expect(row).toMatchObject({
      id,
      expiry: new Date(T0.getTime() + 15 * HOUR),
      last_used_at: new Date(T0.getTime() + 5 * HOUR),
    });
    expect(eventsNamed(t, KnoxEvents.TOKEN_REFRESHED)).toEqual([
      expect.objectContaining({
        tokenId: id,
        expiry: new Date(T0.getTime() + 15 * HOUR),
      }),
    ]);
  });
});

describe('legacyTokenDigests: schemes that do not apply or are broken', () => {
  const t = useTestApp(
    {
      knox: {
        tokenFormat: 'checksum',
        legacyTokenDigests: [
          () => {
            throw new Error('not for me');
          },
          (() => Buffer.alloc(64)) as never,
          // A binary digest as a string: PostgreSQL refuses a NUL in a text parameter.
          (token: string) =>
            `\u0000${createHash('sha256').update(token).digest().toString('latin1')}`,
          legacyDigest,
        ],
      },
    },
    async (app) => ({ alice: await app.createUser('alice') }),
  );

  it('a scheme that throws or returns no string (or one with a NUL) counts as no match; the others still apply', async () => {
    const checksum = await login(t, 'alice');
    expect(checksum).toMatch(/^knox_/);
    expect((await me(t, checksum)).status).toBe(200);
    const { token } = await insertLegacy(t, t.seeded.alice);
    expect((await me(t, token)).status).toBe(200);
    expect((await rowsOf(t, token)).current).toHaveLength(1);
    expectUnauthorized(await me(t, hexToken()), MESSAGES.INVALID_TOKEN);
  });
});

describe('without legacyTokenDigests', () => {
  const t = useTestApp({}, async (app) => ({
    alice: await app.createUser('alice'),
  }));

  it('a legacy row is 401 "Invalid token." and left as it was', async () => {
    const { token } = await insertLegacy(t, t.seeded.alice);
    expectUnauthorized(await me(t, token), MESSAGES.INVALID_TOKEN);
    const { current, legacy } = await rowsOf(t, token);
    expect(current).toHaveLength(0);
    expect(legacy).toHaveLength(1);
  });

  it('a current token costs one query, with the plain equality lookup', async () => {
    const token = await login(t, 'alice');
    t.recorder.reset();
    expect((await me(t, token)).status).toBe(200);
    expect(t.recorder.statements).toHaveLength(1);
    expect(t.recorder.statements[0]).toContain(sql('"token"."digest" = $1'));
    expect(t.recorder.statements[0]).not.toMatch(/ IN \(/);
  });
});
