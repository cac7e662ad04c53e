/**
 * Issue 4: `POST {path}/refresh` (extend the expiry now, within the max TTL) and
 * `POST {path}/rotate` (a new token replaces the current one, with an optional grace period).
 */
import { describe, expect, it } from '@jest/globals';
import { KnoxEvents, KnoxTokenService } from '../../../lib/index.js';
import { PLATFORMS } from '../../support/platforms.js';
import { randomUUID } from 'node:crypto';
import {
  EMBEDDED_DB,
  createTestApp,
  login,
  useTestApp,
  type TestApp,
} from '../../support/test-app.js';
import { TEST_DB, rowDate, sql } from '../../support/test-db.js';
import { dateParam } from '../../support/token-rows.js';
import {
  DAY,
  HOUR,
  MINUTE,
  SECOND,
  T0,
  bearer,
  digestOf,
  eventsJson,
  eventsNamed,
  loginWithRow,
  rowOf,
} from '../../support/sessions.js';

const at = (ms: number) => new Date(T0.getTime() + ms);
const LOGIN_UA = 'Phone/1.0';
const LATER_UA = 'Phone/2.0';

describe.each(PLATFORMS)('POST /auth/refresh (%s)', (platform) => {
  describe('defaults (auto refresh off, 10 h TTL)', () => {
    const t = useTestApp({ platform }, async (app) => ({
      aliceId: (await app.createUser('alice')).id,
    }));

    it('extends the expiry to now + TTL at once and returns it', async () => {
      const { token, row } = await loginWithRow(t, 'alice');
      t.clock.set(at(5 * HOUR));
      t.events.length = 0;
      const res = await t.http
        .post('/auth/refresh')
        .set('Authorization', bearer(token))
        .set('User-Agent', LATER_UA);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ expiry: at(15 * HOUR).toISOString() });
      expect((await rowOf(t, token)).expiry).toEqual(at(15 * HOUR));
      expect(eventsNamed(t, KnoxEvents.TOKEN_REFRESHED)).toEqual([
        {
          userId: t.seeded.aliceId,
          tokenId: row.id,
          tokenKey: token.slice(0, 15),
          ip: expect.any(String),
          userAgent: LATER_UA,
          expiry: at(15 * HOUR),
        },
      ]);
      expect(eventsJson(t)).not.toContain(token);

      // It now outlives its first expiry, and stops 1 ms after the new one.
      t.clock.set(at(15 * HOUR));
      expect(
        (await t.http.get('/me').set('Authorization', bearer(token))).status,
      ).toBe(200);
      t.clock.set(at(15 * HOUR + 1));
      const late = await t.http.get('/me').set('Authorization', bearer(token));
      expect(late.status).toBe(401);
      expect(late.body.message).toBe('Invalid token.');
    });

    it('a refresh at the same instant changes nothing and emits nothing', async () => {
      const { token } = await loginWithRow(t, 'alice');
      t.events.length = 0;
      t.recorder.reset();
      const res = await t.http
        .post('/auth/refresh')
        .set('Authorization', bearer(token));
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ expiry: at(10 * HOUR).toISOString() });
      expect(t.recorder.writes).toHaveLength(0);
      expect(eventsNamed(t, KnoxEvents.TOKEN_REFRESHED)).toHaveLength(0);
    });

    it('needs a token; an expired one is refused, not revived', async () => {
      const { token } = await loginWithRow(t, 'alice');
      expect((await t.http.post('/auth/refresh')).status).toBe(401);
      t.clock.set(at(10 * HOUR + 1));
      const res = await t.http
        .post('/auth/refresh')
        .set('Authorization', bearer(token));
      expect(res.status).toBe(401);
      expect(await t.tokenRows()).toHaveLength(0);
    });
  });
});

describe.each(PLATFORMS)('POST /auth/rotate (%s)', (platform) => {
  describe('default grace period (0)', () => {
    const t = useTestApp({ platform }, async (app) => ({
      aliceId: (await app.createUser('alice')).id,
    }));

    it('issues a new token with the same name and metadata and refuses the old one at once', async () => {
      const res0 = await t.http
        .post('/auth/login')
        .set('User-Agent', LOGIN_UA)
        .send({
          username: 'alice',
          password: 'secret-password',
          name: 'phone',
        });
      const old: string = res0.body.token;
      const oldRow = await rowOf(t, old);
      t.clock.set(at(2 * HOUR));
      t.events.length = 0;

      const res = await t.http
        .post('/auth/rotate')
        .set('Authorization', bearer(old))
        .set('User-Agent', LATER_UA);
      expect(res.status).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body).toEqual({
        expiry: at(12 * HOUR).toISOString(),
        token: expect.any(String),
        id: (await rowOf(t, res.body.token)).id,
      });
      const fresh: string = res.body.token;
      expect(fresh).toMatch(/^[0-9a-f]{64}$/);
      expect(fresh).not.toBe(old);

      expect(await t.tokenRows()).toHaveLength(1);
      const row = await rowOf(t, fresh);
      expect(row).toEqual({
        ...row,
        digest: expect.not.stringMatching(oldRow.digest),
        user_id: t.seeded.aliceId,
        name: 'phone',
        user_agent: LOGIN_UA,
        ip: oldRow.ip,
        created: T0,
        expiry: at(12 * HOUR),
        last_used_at: at(2 * HOUR),
        retired_at: null,
      });
      expect(row.id).not.toBe(oldRow.id);

      const refused = await t.http.get('/me').set('Authorization', bearer(old));
      expect(refused.status).toBe(401);
      expect(refused.body.message).toBe('Invalid token.');
      expect(
        (await t.http.get('/me').set('Authorization', bearer(fresh))).status,
      ).toBe(200);

      expect(t.events).toEqual([
        {
          name: KnoxEvents.TOKEN_ROTATED,
          payload: {
            userId: t.seeded.aliceId,
            tokenId: oldRow.id,
            tokenKey: old.slice(0, 15),
            ip: expect.any(String),
            userAgent: LATER_UA,
            newTokenId: row.id,
            oldTokenValidUntil: null,
            abilities: null,
          },
        },
        {
          name: KnoxEvents.TOKEN_REVOKED,
          payload: {
            userId: t.seeded.aliceId,
            tokenId: oldRow.id,
            tokenKey: old.slice(0, 15),
            ip: expect.any(String),
            userAgent: LATER_UA,
            reason: 'rotated',
          },
        },
        {
          name: KnoxEvents.TOKEN_CREATED,
          payload: {
            userId: t.seeded.aliceId,
            tokenId: row.id,
            tokenKey: fresh.slice(0, 15),
            ip: expect.any(String),
            userAgent: LATER_UA,
            expiry: at(12 * HOUR),
            name: 'phone',
            abilities: null,
            source: 'rotate',
          },
        },
      ]);
      const text = eventsJson(t);
      expect(text).not.toContain(old);
      expect(text).not.toContain(fresh);

      const list = await t.http
        .get('/auth/tokens')
        .set('Authorization', bearer(fresh));
      expect(list.body).toEqual([
        expect.objectContaining({
          id: row.id,
          name: 'phone',
          userAgent: LOGIN_UA,
          current: true,
        }),
      ]);
    });

    it('rotating the same token twice: the second attempt is 401 and issues nothing', async () => {
      const old = await login(t, 'alice');
      const first = await t.http
        .post('/auth/rotate')
        .set('Authorization', bearer(old));
      expect(first.status).toBe(200);
      const second = await t.http
        .post('/auth/rotate')
        .set('Authorization', bearer(old));
      expect(second.status).toBe(401);
      expect(await t.tokenRows()).toHaveLength(1);
    });

    it('needs a token, and GET is 405 after authentication', async () => {
      expect((await t.http.post('/auth/rotate')).status).toBe(401);
      const token = await login(t, 'alice');
      expect(
        (await t.http.get('/auth/rotate').set('Authorization', bearer(token)))
          .status,
      ).toBe(405);
      expect(await t.tokenRows()).toHaveLength(1);
    });
  });

  describe('with rotationGracePeriod: 30 s and auto refresh', () => {
    const t = useTestApp(
      {
        platform,
        knox: { rotationGracePeriod: 30 * SECOND, autoRefresh: true },
      },
      async (app) => ({ aliceId: (await app.createUser('alice')).id }),
    );

    it('the old token works until the grace ends, is never refreshed meanwhile, then is 401', async () => {
      const { token: old, row: oldRow } = await loginWithRow(t, 'alice', {
        name: 'tablet',
      });
      t.clock.set(at(HOUR));
      t.events.length = 0;
      const res = await t.http
        .post('/auth/rotate')
        .set('Authorization', bearer(old));
      expect(res.status).toBe(200);
      const fresh: string = res.body.token;
      const graceEnd = at(HOUR + 30 * SECOND);

      const retired = await rowOf(t, old);
      expect(retired.expiry).toEqual(graceEnd);
      expect(retired.retired_at).toEqual(at(HOUR));
      expect((await rowOf(t, fresh)).name).toBe('tablet');
      // The rotate request itself was auto-refreshed first; then the token was rotated, and
      // not revoked (it lives out its grace period).
      expect(t.events.map((e) => e.name)).toEqual([
        KnoxEvents.TOKEN_REFRESHED,
        KnoxEvents.TOKEN_ROTATED,
        KnoxEvents.TOKEN_CREATED,
      ]);
      expect(eventsNamed(t, KnoxEvents.TOKEN_ROTATED)).toEqual([
        {
          userId: t.seeded.aliceId,
          tokenId: oldRow.id,
          tokenKey: old.slice(0, 15),
          ip: expect.any(String),
          userAgent: null,
          newTokenId: (await rowOf(t, fresh)).id,
          oldTokenValidUntil: graceEnd,
          abilities: null,
        },
      ]);

      // Requests in flight with the old token still succeed, and do not extend it: auto
      // refresh leaves it alone, and an explicit refresh is refused (issue 8: a retired token
      // is for finishing reads only).
      t.clock.set(at(HOUR + 29 * SECOND));
      expect(
        (await t.http.get('/me').set('Authorization', bearer(old))).status,
      ).toBe(200);
      const refresh = await t.http
        .post('/auth/refresh')
        .set('Authorization', bearer(old));
      expect(refresh.status).toBe(401);
      expect(refresh.body.message).toBe('Invalid token.');
      expect((await rowOf(t, old)).expiry).toEqual(graceEnd);

      t.clock.set(graceEnd);
      expect(
        (await t.http.get('/me').set('Authorization', bearer(old))).status,
      ).toBe(200);

      t.clock.set(at(HOUR + 30 * SECOND + 1));
      const late = await t.http.get('/me').set('Authorization', bearer(old));
      expect(late.status).toBe(401);
      expect(late.body.message).toBe('Invalid token.');
      expect(await rowOf(t, old)).toBeUndefined();
      expect(
        eventsNamed(t, KnoxEvents.TOKEN_EXPIRED).map((e) => e.tokenId),
      ).toEqual([oldRow.id]);

      expect(
        (await t.http.get('/me').set('Authorization', bearer(fresh))).status,
      ).toBe(200);
      expect(eventsJson(t)).not.toContain(old);
      expect(eventsJson(t)).not.toContain(fresh);
    });
  });
});

describe.each(PLATFORMS)('POST /auth/refresh with options (%s)', (platform) => {
  it('is capped by autoRefreshMaxTtl (created + max), then the token dies', async () => {
    const t = await createTestApp({
      platform,
      knox: { autoRefreshMaxTtl: 12 * HOUR },
    });
    try {
      await t.createUser('alice');
      const token = await login(t, 'alice');
      t.clock.set(at(5 * HOUR));
      const first = await t.http
        .post('/auth/refresh')
        .set('Authorization', bearer(token));
      expect(first.body).toEqual({ expiry: at(12 * HOUR).toISOString() });
      expect((await rowOf(t, token)).expiry).toEqual(at(12 * HOUR));

      t.clock.set(at(11 * HOUR));
      t.events.length = 0;
      const second = await t.http
        .post('/auth/refresh')
        .set('Authorization', bearer(token));
      expect(second.body).toEqual({ expiry: at(12 * HOUR).toISOString() });
      expect(eventsNamed(t, KnoxEvents.TOKEN_REFRESHED)).toHaveLength(0);

      t.clock.set(at(12 * HOUR + SECOND));
      expect(
        (await t.http.get('/me').set('Authorization', bearer(token))).status,
      ).toBe(401);
    } finally {
      await t.close();
    }
  });

  it("uses the token's own TTL (a 'remember me' login) and the configured expiry format", async () => {
    const t = await createTestApp({
      platform,
      knox: {
        getTokenTtl: ({ body }) =>
          body.rememberMe === true ? 30 * DAY : undefined,
        formatExpiry: (d) => d.getTime(),
      },
    });
    try {
      await t.createUser('alice');
      const long = await login(t, 'alice', undefined, { rememberMe: true });
      const short = await login(t, 'alice');
      t.clock.set(at(HOUR));
      const a = await t.http
        .post('/auth/refresh')
        .set('Authorization', bearer(long));
      expect(a.body).toEqual({ expiry: at(HOUR + 30 * DAY).getTime() });
      const b = await t.http
        .post('/auth/refresh')
        .set('Authorization', bearer(short));
      expect(b.body).toEqual({ expiry: at(11 * HOUR).getTime() });
    } finally {
      await t.close();
    }
  });

  it('a token that never expires answers expiry: null and is not written', async () => {
    const t = await createTestApp({ platform, knox: { tokenTtl: null } });
    try {
      await t.createUser('alice');
      const token = await login(t, 'alice');
      t.clock.set(at(HOUR));
      t.events.length = 0;
      t.recorder.reset();
      const res = await t.http
        .post('/auth/refresh')
        .set('Authorization', bearer(token));
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ expiry: null });
      expect((await rowOf(t, token)).expiry).toBeNull();
      expect(t.recorder.writes.filter((s) => /"expiry"/.test(s))).toHaveLength(
        0,
      );
      expect(eventsNamed(t, KnoxEvents.TOKEN_REFRESHED)).toHaveLength(0);
    } finally {
      await t.close();
    }
  });
});

describe.each(PLATFORMS)('POST /auth/rotate with options (%s)', (platform) => {
  it('a grace period never extends the old token past its own expiry', async () => {
    const t = await createTestApp({
      platform,
      knox: { rotationGracePeriod: 30 * SECOND },
    });
    try {
      await t.createUser('alice');
      const old = await login(t, 'alice');
      t.clock.set(at(10 * HOUR - 10 * SECOND));
      const res = await t.http
        .post('/auth/rotate')
        .set('Authorization', bearer(old));
      expect(res.status).toBe(200);
      const row = await rowOf(t, old);
      expect(row.expiry).toEqual(at(10 * HOUR));
      expect(row.retired_at).toEqual(at(10 * HOUR - 10 * SECOND));
      expect((await rowOf(t, res.body.token)).expiry).toEqual(
        at(20 * HOUR - 10 * SECOND),
      );
    } finally {
      await t.close();
    }
  });

  it('never escapes autoRefreshMaxTtl: the new token keeps the session start', async () => {
    const t = await createTestApp({
      platform,
      knox: { autoRefresh: true, autoRefreshMaxTtl: 12 * HOUR },
    });
    try {
      await t.createUser('alice');
      const first = await login(t, 'alice');
      t.clock.set(at(9 * HOUR));
      const a = await t.http
        .post('/auth/rotate')
        .set('Authorization', bearer(first));
      expect(a.body.expiry).toBe(at(12 * HOUR).toISOString());
      t.clock.set(at(11 * HOUR));
      const b = await t.http
        .post('/auth/rotate')
        .set('Authorization', bearer(a.body.token));
      expect(b.status).toBe(200);
      expect(b.body.expiry).toBe(at(12 * HOUR).toISOString());
      const [row] = await t.tokenRows();
      expect(rowDate(row.created)).toEqual(T0);
      t.clock.set(at(12 * HOUR + 1));
      expect(
        (await t.http.get('/me').set('Authorization', bearer(b.body.token)))
          .status,
      ).toBe(401);
    } finally {
      await t.close();
    }
  });

  it('keeps a never-expiring token never-expiring, and keeps the token prefix', async () => {
    const t = await createTestApp({
      platform,
      knox: { tokenTtl: null, tokenPrefix: 'TEST_' },
    });
    try {
      await t.createUser('alice');
      const old = await login(t, 'alice');
      expect(old.startsWith('TEST_')).toBe(true);
      t.clock.set(at(100 * HOUR));
      const res = await t.http
        .post('/auth/rotate')
        .set('Authorization', bearer(old));
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        expiry: null,
        token: expect.stringMatching(/^TEST_[0-9a-f]{64}$/),
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      });
      const rows = await t.tokenRows();
      expect(rows).toHaveLength(1);
      expect(rows[0].expiry).toBeNull();
      expect(rows[0].token_key).toBe(res.body.token.slice(0, 15));
    } finally {
      await t.close();
    }
  });

  it('keeps a per-login prefix (getTokenPrefix), and gives others the configured one', async () => {
    const t = await createTestApp({
      platform,
      knox: {
        tokenPrefix: 'app_',
        getTokenPrefix: ({ body }) =>
          body.admin === true ? 'ADMIN_' : undefined,
      },
    });
    try {
      await t.createUser('alice');
      const admin = await login(t, 'alice', undefined, { admin: true });
      const plain = await login(t, 'alice');
      expect(admin.startsWith('ADMIN_')).toBe(true);
      const a = await t.http
        .post('/auth/rotate')
        .set('Authorization', bearer(admin));
      expect(a.body.token).toMatch(/^ADMIN_[0-9a-f]{64}$/);
      const b = await t.http
        .post('/auth/rotate')
        .set('Authorization', bearer(plain));
      expect(b.body.token).toMatch(/^app_[0-9a-f]{64}$/);
    } finally {
      await t.close();
    }
  });

  it("rotates a django-rest-knox token into the app's checksum format", async () => {
    const t = await createTestApp({
      platform,
      knox: { tokenFormat: 'checksum', tokenPrefix: 'myapp_' },
    });
    try {
      const aliceId = (await t.createUser('alice')).id;
      const legacy = 'c'.repeat(64);
      // As django-rest-knox writes it: no id on PostgreSQL, whose default gives one; MySQL's and
      // SQLite's tables have no default (the library sets the id), so the row brings one.
      const id = TEST_DB === 'postgres' ? [] : [randomUUID()];
      await t.dataSource.query(
        sql(
          `INSERT INTO knox_authtoken (digest, token_key, user_id, created, expiry${id.length ? ', id' : ''})
           VALUES ($1, $2, $3, $4, $5${id.length ? ', $6' : ''})`,
        ),
        [
          digestOf(legacy),
          legacy.slice(0, 15),
          aliceId,
          dateParam(T0),
          dateParam(at(10 * HOUR)),
          ...id,
        ],
      );
      const res = await t.http
        .post('/auth/rotate')
        .set('Authorization', bearer(legacy));
      expect(res.status).toBe(200);
      expect(res.body.token).toMatch(/^myapp_[0-9A-Za-z]{49}$/);
      expect(
        (await t.http.get('/me').set('Authorization', bearer(res.body.token)))
          .status,
      ).toBe(200);
      expect(
        (await t.http.get('/me').set('Authorization', bearer(legacy))).status,
      ).toBe(401);
    } finally {
      await t.close();
    }
  });

  it('works at the token limit (reject policy): the old token makes way for the new one', async () => {
    const t = await createTestApp({
      platform,
      knox: { tokenLimitPerUser: 1 },
    });
    try {
      await t.createUser('alice');
      const old = await login(t, 'alice');
      t.clock.advance(MINUTE);
      const res = await t.http
        .post('/auth/rotate')
        .set('Authorization', bearer(old));
      expect(res.status).toBe(200);
      expect(await t.tokenRows()).toHaveLength(1);
      const again = await t.http
        .post('/auth/login')
        .send({ username: 'alice', password: 'secret-password' });
      expect(again.status).toBe(403);
    } finally {
      await t.close();
    }
  });
});

/**
 * Whether a session waits on a lock: PostgreSQL's pg_locks; on MariaDB, another session of this
 * database running a write (information_schema.innodb_trx did not list the waiting autocommit
 * UPDATE on MariaDB 10.11; a write to one row held by another transaction runs until that one
 * ends). SQLite has no lock table: the library's work waits, in its queue, for the app's
 * transaction open on the one connection, so "still unanswered after 100 ms" is the wait.
 */
async function waitingOnLock(t: TestApp, poll: number): Promise<boolean> {
  switch (TEST_DB) {
    case 'postgres': {
      const [{ waiting }] = await t.dataSource.query(
        `SELECT count(*)::int AS waiting FROM pg_locks WHERE NOT granted`,
      );
      return waiting > 0;
    }
    case 'mariadb': {
      const [{ waiting }] = await t.dataSource.query(
        `SELECT count(*) AS waiting FROM information_schema.processlist
         WHERE db = DATABASE() AND id <> CONNECTION_ID() AND command = 'Query'
           AND (info LIKE 'UPDATE %' OR info LIKE 'DELETE %' OR info LIKE '% FOR UPDATE')`,
      );
      return Number(waiting) > 0;
    }
    case 'sqlite':
      return poll >= 20;
  }
}

describe('a refresh racing a rotation with a grace period', () => {
  const t = useTestApp(
    { knox: { rotationGracePeriod: 30 * SECOND, autoRefresh: true } },
    async (app) => ({ aliceId: (await app.createUser('alice')).id }),
  );

  it('refresh() of a record read before the rotation never extends the retired token', async () => {
    const service = t.app.get(KnoxTokenService);
    const old = await login(t, 'alice');
    t.clock.set(at(HOUR));
    const [stale] = await service.list(t.seeded.aliceId);
    const rotated = await t.http
      .post('/auth/rotate')
      .set('Authorization', bearer(old));
    expect(rotated.status).toBe(200);
    const graceEnd = at(HOUR + 30 * SECOND);
    t.events.length = 0;

    // Refused (issue 8): the row is re-read under the user's lock and found retired.
    t.clock.set(at(HOUR + 10 * SECOND));
    await expect(service.refresh(stale)).rejects.toMatchObject({ status: 401 });
    expect((await rowOf(t, old)).expiry).toEqual(graceEnd);
    expect(eventsNamed(t, KnoxEvents.TOKEN_REFRESHED)).toEqual([]);

    t.clock.set(at(HOUR + 30 * SECOND + 1));
    const late = await t.http.get('/me').set('Authorization', bearer(old));
    expect(late.status).toBe(401);
  });

  it('refresh() or rotate() of a record that has expired since it was read: 401, nothing revived or minted', async () => {
    const service = t.app.get(KnoxTokenService);
    const token = await login(t, 'alice');
    const [record] = await service.list(t.seeded.aliceId);
    const expiry = record.expiry!;
    t.clock.set(new Date(expiry.getTime() + 1));
    await expect(service.refresh(record)).rejects.toMatchObject({
      status: 401,
    });
    await expect(service.rotate(record)).rejects.toMatchObject({
      status: 401,
    });
    expect(await t.tokenRows()).toHaveLength(1);
    expect((await rowOf(t, token)).expiry).toEqual(expiry);
    expect(
      (await t.http.get('/me').set('Authorization', bearer(token))).status,
    ).toBe(401);
  });

  // Needs two concurrent sessions (one holding the row lock): not on the embedded PGlite.
  (EMBEDDED_DB ? it.skip : it)(
    'an auto refresh whose UPDATE waits on the rotation keeps the grace expiry',
    async () => {
      const old = await login(t, 'alice');
      t.clock.set(at(HOUR));
      const graceEnd = at(HOUR + 30 * SECOND);
      // The rotation holds the row (retired, expiry cut to the grace end) until it commits.
      const rotation = t.dataSource.createQueryRunner();
      await rotation.connect();
      await rotation.startTransaction();
      try {
        await rotation.query(
          sql(
            `UPDATE knox_authtoken SET expiry = $1, retired_at = $2 WHERE digest = $3`,
          ),
          [dateParam(graceEnd), dateParam(at(HOUR)), digestOf(old)],
        );
        // The request reads the row as it was (in use, due a refresh) and then waits to write it.
        const request = t.http.get('/me').set('Authorization', bearer(old));
        const answer = new Promise<{ status: number }>((resolve, reject) =>
          request.then(resolve, reject),
        );
        let answered = false;
        void answer.then(() => (answered = true));
        for (let i = 0; ; i += 1) {
          if (answered) {
            throw new Error('the request answered while the row was held');
          }
          if (await waitingOnLock(t, i)) {
            break;
          }
          if (i > 500) {
            throw new Error('the request never waited on the row');
          }
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        await rotation.commitTransaction();
        expect((await answer).status).toBe(200);
      } finally {
        if (rotation.isTransactionActive) {
          await rotation.rollbackTransaction();
        }
        await rotation.release();
      }
      const row = await rowOf(t, old);
      expect(row.expiry).toEqual(graceEnd);
      expect(row.retired_at).toEqual(at(HOUR));
      // Its UPDATE ran once the row was retired, and a retired row is read-only (issue 23):
      // last use stays the login's.
      expect(row.last_used_at).toEqual(at(0));
      t.clock.set(at(HOUR + 30 * SECOND + 1));
      expect(
        (await t.http.get('/me').set('Authorization', bearer(old))).status,
      ).toBe(401);
    },
  );
});
