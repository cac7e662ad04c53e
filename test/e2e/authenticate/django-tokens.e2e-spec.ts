import { describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import type { TestUser } from '../../support/fixtures.js';
import { login, useTestApp, type TestApp } from '../../support/test-app.js';
import { HOUR, MESSAGES, expectUnauthorized } from '../../support/http.js';
import { sql } from '../../support/test-db.js';
import { dateParam, idColumn, tokenRow } from '../../support/token-rows.js';

/** A token as django-rest-knox 5 issues it: prefix + hex of 32 random bytes. */
function knoxToken(prefix = ''): string {
  return prefix + randomBytes(32).toString('hex');
}

/**
 * Inserts the row exactly as django-rest-knox would: its five columns, nothing else. On
 * MySQL/MariaDB and SQLite the public id has no database default (PostgreSQL's is
 * `gen_random_uuid()`), so the row also gets the id every other writer must set there.
 */
async function insertAsKnox(
  t: TestApp,
  token: string,
  user: TestUser,
  created: Date,
  expiry: Date | null,
): Promise<void> {
  const digest = createHash('sha512').update(token, 'utf8').digest('hex');
  const id = idColumn();
  await t.dataSource.query(
    sql(
      `INSERT INTO knox_authtoken (digest, token_key, user_id, created, expiry${id.column}) VALUES ($1, $2, $3, $4, $5${id.values.length ? ', $6' : ''})`,
    ),
    [
      digest,
      token.slice(0, 15),
      user.id,
      dateParam(created),
      dateParam(expiry),
      ...id.values,
    ],
  );
}

describe('tokens written by django-rest-knox', () => {
  const t = useTestApp({}, async (app) => ({
    alice: await app.createUser('alice'),
  }));

  const me = (token: string) =>
    t.http.get('/me').set('Authorization', `Token ${token}`);

  it('a row inserted as knox does authenticates over HTTP', async () => {
    const token = knoxToken();
    const now = t.clock.now();
    await insertAsKnox(
      t,
      token,
      t.seeded.alice,
      now,
      new Date(now.getTime() + 10 * HOUR),
    );
    const res = await me(token);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id: t.seeded.alice.id,
      username: 'alice',
    });
  });

  it('a knox row that never expires, and one with a prefix, authenticate', async () => {
    const plain = knoxToken();
    const prefixed = knoxToken('TEST_');
    await insertAsKnox(t, plain, t.seeded.alice, t.clock.now(), null);
    await insertAsKnox(t, prefixed, t.seeded.alice, t.clock.now(), null);
    expect((await me(plain)).status).toBe(200);
    expect((await me(prefixed)).status).toBe(200);
  });

  it('an expired knox row: 401 "Invalid token." and the row deleted', async () => {
    const token = knoxToken();
    const now = t.clock.now();
    await insertAsKnox(
      t,
      token,
      t.seeded.alice,
      new Date(now.getTime() - 11 * HOUR),
      new Date(now.getTime() - HOUR),
    );
    expectUnauthorized(await me(token), MESSAGES.INVALID_TOKEN);
    expect(await t.tokenRows()).toHaveLength(0);
  });

  it('a knox row can log out, and is counted by logoutall', async () => {
    const first = knoxToken();
    const second = knoxToken();
    await insertAsKnox(t, first, t.seeded.alice, t.clock.now(), null);
    await insertAsKnox(t, second, t.seeded.alice, t.clock.now(), null);
    const out = await t.http
      .post('/auth/logout')
      .set('Authorization', `Token ${first}`);
    expect(out.status).toBe(204);
    expect(await t.tokenRows()).toHaveLength(1);
    const all = await t.http
      .post('/auth/logoutall')
      .set('Authorization', `Token ${second}`);
    expect(all.status).toBe(204);
    expect(await t.tokenRows()).toHaveLength(0);
  });

  it('the rows this module writes read back as knox reads them', async () => {
    const token = await login(t, 'alice');
    const [row] = (
      await t.dataSource.query(
        'SELECT digest, token_key, user_id, created, expiry FROM knox_authtoken',
      )
    ).map(tokenRow);
    expect(row).toEqual({
      digest: createHash('sha512').update(token, 'utf8').digest('hex'),
      token_key: token.slice(0, 15),
      user_id: t.seeded.alice.id,
      created: t.clock.now(),
      expiry: new Date(t.clock.now().getTime() + 10 * HOUR),
    });
  });
});
