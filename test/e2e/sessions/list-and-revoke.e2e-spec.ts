/**
 * Issue 4, the session routes: `GET {path}/tokens`, `DELETE {path}/tokens/:id` and
 * `POST {path}/logoutothers`, checked by their answers, the rows left and the events.
 */
import { describe, expect, it } from '@jest/globals';
import { KnoxEvents } from '../../../lib/index.js';
import { PLATFORMS } from '../../support/platforms.js';
import { login, useTestApp } from '../../support/test-app.js';
import { sql } from '../../support/test-db.js';
import { insertTokenRow } from '../../support/token-rows.js';
import {
  HOUR,
  MINUTE,
  T0,
  bearer,
  eventsJson,
  eventsNamed,
  loginWithRow,
  rowIds,
  rowOf,
} from '../../support/sessions.js';

const UA = 'KnoxTest/2.0';

describe.each(PLATFORMS)('session routes (%s)', (platform) => {
  const t = useTestApp({ platform }, async (app) => ({
    aliceId: (await app.createUser('alice')).id,
    bobId: (await app.createUser('bob')).id,
  }));

  describe('GET /auth/tokens', () => {
    it("lists the caller's live tokens, newest first, current one flagged, never a secret", async () => {
      const phone = await loginWithRow(t, 'alice', { name: 'phone' });
      t.clock.advance(MINUTE);
      const laptop = await loginWithRow(t, 'alice', { name: 'laptop' });
      t.clock.advance(MINUTE);
      const bobs = await loginWithRow(t, 'bob', { name: 'bob-phone' });
      t.clock.advance(MINUTE);

      const res = await t.http
        .get('/auth/tokens')
        .set('Authorization', bearer(phone.token))
        .set('User-Agent', UA);
      expect(res.status).toBe(200);
      expect(res.body).toEqual([
        {
          id: laptop.row.id,
          name: 'laptop',
          userAgent: null,
          ip: laptop.row.ip,
          created: new Date(T0.getTime() + MINUTE).toISOString(),
          lastUsedAt: new Date(T0.getTime() + MINUTE).toISOString(),
          lastUsedIp: laptop.row.ip,
          expiry: new Date(T0.getTime() + MINUTE + 10 * HOUR).toISOString(),
          abilities: null,
          current: false,
        },
        {
          id: phone.row.id,
          name: 'phone',
          userAgent: null,
          ip: phone.row.ip,
          created: T0.toISOString(),
          // This request is the first use in more than a minute: it is recorded.
          lastUsedAt: new Date(T0.getTime() + 3 * MINUTE).toISOString(),
          lastUsedIp: phone.row.ip,
          expiry: new Date(T0.getTime() + 10 * HOUR).toISOString(),
          abilities: null,
          current: true,
        },
      ]);
      const text = res.text;
      for (const secret of [
        phone.token,
        laptop.token,
        bobs.token,
        phone.row.digest,
        laptop.row.digest,
        bobs.row.digest,
      ]) {
        expect(text).not.toContain(secret);
      }
      expect(text).not.toContain(bobs.row.id);
      expect(text).not.toContain('digest');
      expect(text).not.toContain('tokenKey');

      const asLaptop = await t.http
        .get('/auth/tokens')
        .set('Authorization', bearer(laptop.token));
      expect(
        asLaptop.body.map((s: { id: string; current: boolean }) => [
          s.id,
          s.current,
        ]),
      ).toEqual([
        [laptop.row.id, true],
        [phone.row.id, false],
      ]);

      const asBob = await t.http
        .get('/auth/tokens')
        .set('Authorization', bearer(bobs.token));
      expect(asBob.body).toHaveLength(1);
      expect(asBob.body[0]).toMatchObject({ id: bobs.row.id, current: true });
    });

    it('leaves expired tokens out (and keeps never-expiring ones)', async () => {
      const current = await login(t, 'alice', undefined, { name: 'current' });
      // An expired token not yet pruned, and a never-expiring one, written as knox would.
      for (const [digest, key, expiry, name] of [
        [
          'e'.repeat(128),
          'expiredexpired0',
          new Date(T0.getTime() - HOUR),
          'old',
        ],
        ['f'.repeat(128), 'foreverforever0', null, 'forever'],
      ] as const) {
        await insertTokenRow(t.dataSource, {
          digest,
          token_key: key,
          user_id: t.seeded.aliceId,
          created: new Date(T0.getTime() - 11 * HOUR),
          expiry,
          name,
        });
      }
      const res = await t.http
        .get('/auth/tokens')
        .set('Authorization', bearer(current));
      expect(res.status).toBe(200);
      expect(res.body.map((s: { name: string }) => s.name).sort()).toEqual([
        'current',
        'forever',
      ]);
      const forever = res.body.find(
        (s: { name: string }) => s.name === 'forever',
      );
      expect(forever.expiry).toBeNull();
      expect(forever.lastUsedAt).toBeNull();
      // Listing does not delete the expired row: pruning is off the request path.
      expect(await t.tokenRows()).toHaveLength(3);

      // A token expiring exactly now still works and is listed; a millisecond later it is not.
      t.clock.set(T0.getTime() + 10 * HOUR);
      const now = await t.http
        .get('/auth/tokens')
        .set('Authorization', bearer(current));
      expect(now.status).toBe(200);
      expect(now.body.map((s: { name: string }) => s.name).sort()).toEqual([
        'current',
        'forever',
      ]);
    });

    it('needs a token', async () => {
      const res = await t.http.get('/auth/tokens');
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Token');
    });
  });

  describe('DELETE /auth/tokens/:id', () => {
    it("revokes one of the caller's tokens: 204, row gone, event, token refused", async () => {
      const current = await loginWithRow(t, 'alice', { name: 'current' });
      const other = await loginWithRow(t, 'alice', { name: 'other' });
      t.events.length = 0;

      const res = await t.http
        .delete(`/auth/tokens/${other.row.id}`)
        .set('Authorization', bearer(current.token))
        .set('User-Agent', UA);
      expect(res.status).toBe(204);
      expect(res.text).toBe('');
      expect(await rowIds(t)).toEqual([current.row.id]);
      expect(t.events).toEqual([
        {
          name: KnoxEvents.TOKEN_REVOKED,
          payload: {
            userId: t.seeded.aliceId,
            tokenId: other.row.id,
            tokenKey: other.token.slice(0, 15),
            ip: expect.any(String),
            userAgent: UA,
            reason: 'revoked-by-id',
          },
        },
      ]);
      expect(eventsJson(t)).not.toContain(other.token);

      const refused = await t.http
        .get('/me')
        .set('Authorization', bearer(other.token));
      expect(refused.status).toBe(401);
      expect(refused.body.message).toBe('Invalid token.');

      const again = await t.http
        .delete(`/auth/tokens/${other.row.id}`)
        .set('Authorization', bearer(current.token));
      expect(again.status).toBe(404);
    });

    it('accepts the id in upper case', async () => {
      const current = await loginWithRow(t, 'alice');
      const other = await loginWithRow(t, 'alice');
      const res = await t.http
        .delete(`/auth/tokens/${String(other.row.id).toUpperCase()}`)
        .set('Authorization', bearer(current.token));
      expect(res.status).toBe(204);
      expect(await rowIds(t)).toEqual([current.row.id]);
    });

    it('may revoke the current token itself', async () => {
      const current = await loginWithRow(t, 'alice');
      const res = await t.http
        .delete(`/auth/tokens/${current.row.id}`)
        .set('Authorization', bearer(current.token));
      expect(res.status).toBe(204);
      expect(await t.tokenRows()).toHaveLength(0);
      const after = await t.http
        .get('/me')
        .set('Authorization', bearer(current.token));
      expect(after.status).toBe(401);
    });

    it.each([
      ['an unknown id', '4b5f6c1e-8c1a-4c1e-9d3f-2a6b7c8d9e0f'],
      ['a malformed id', 'not-a-uuid'],
      ['a uuid one digit short', '4b5f6c1e-8c1a-4c1e-9d3f-2a6b7c8d9e0'],
      ['a token-like id', 'a'.repeat(64)],
      ['SQL', "1' OR '1'='1"],
      ['a NUL byte', '%00'],
    ])('%s is 404 and deletes nothing', async (_label, id) => {
      const current = await loginWithRow(t, 'alice');
      const other = await loginWithRow(t, 'alice');
      const bobs = await loginWithRow(t, 'bob');
      t.events.length = 0;
      const res = await t.http
        .delete(
          `/auth/tokens/${encodeURIComponent(id).replace('%2500', '%00')}`,
        )
        .set('Authorization', bearer(current.token));
      expect(res.status).toBe(404);
      expect(res.body).toEqual({
        statusCode: 404,
        error: 'Not Found',
        message: 'Token not found.',
      });
      expect(await rowIds(t)).toEqual(
        [current.row.id, other.row.id, bobs.row.id].sort(),
      );
      expect(eventsNamed(t, KnoxEvents.TOKEN_REVOKED)).toHaveLength(0);
    });

    it("someone else's token is 404 and stays", async () => {
      const current = await loginWithRow(t, 'alice');
      const bobs = await loginWithRow(t, 'bob');
      const res = await t.http
        .delete(`/auth/tokens/${bobs.row.id}`)
        .set('Authorization', bearer(current.token));
      expect(res.status).toBe(404);
      expect(res.body.message).toBe('Token not found.');
      expect(await rowIds(t)).toEqual([current.row.id, bobs.row.id].sort());
      const stillWorks = await t.http
        .get('/me')
        .set('Authorization', bearer(bobs.token));
      expect(stillWorks.status).toBe(200);
      expect(eventsNamed(t, KnoxEvents.TOKEN_REVOKED)).toHaveLength(0);
    });

    it('needs a token', async () => {
      const other = await loginWithRow(t, 'alice');
      const res = await t.http.delete(`/auth/tokens/${other.row.id}`);
      expect(res.status).toBe(401);
      expect(await t.tokenRows()).toHaveLength(1);
    });
  });

  describe('POST /auth/logoutothers', () => {
    it("revokes all the caller's other tokens, never-expiring ones too, and only the caller's", async () => {
      const current = await loginWithRow(t, 'alice', { name: 'current' });
      const second = await loginWithRow(t, 'alice', { name: 'second' });
      const forever = await loginWithRow(t, 'alice', { name: 'forever' });
      await t.dataSource.query(
        sql(`UPDATE knox_authtoken SET expiry = NULL WHERE id = $1`),
        [forever.row.id],
      );
      const bobs = await loginWithRow(t, 'bob');
      t.events.length = 0;

      const res = await t.http
        .post('/auth/logoutothers')
        .set('Authorization', bearer(current.token))
        .set('User-Agent', UA);
      expect(res.status).toBe(204);
      expect(await rowIds(t)).toEqual([current.row.id, bobs.row.id].sort());

      const revoked = eventsNamed(t, KnoxEvents.TOKEN_REVOKED);
      expect(revoked.map((e) => e.tokenId).sort()).toEqual(
        [second.row.id, forever.row.id].sort(),
      );
      for (const e of revoked) {
        expect(e).toEqual({
          userId: t.seeded.aliceId,
          tokenId: expect.any(String),
          tokenKey: expect.any(String),
          ip: expect.any(String),
          userAgent: UA,
          reason: 'logout-others',
        });
      }
      expect(eventsNamed(t, KnoxEvents.LOGOUT_ALL)).toHaveLength(0);
      const text = eventsJson(t);
      for (const plaintext of [current.token, second.token, forever.token]) {
        expect(text).not.toContain(plaintext);
      }

      for (const gone of [second, forever]) {
        const r = await t.http
          .get('/me')
          .set('Authorization', bearer(gone.token));
        expect(r.status).toBe(401);
      }
      const stillMe = await t.http
        .get('/me')
        .set('Authorization', bearer(current.token));
      expect(stillMe.status).toBe(200);
      const stillBob = await t.http
        .get('/me')
        .set('Authorization', bearer(bobs.token));
      expect(stillBob.status).toBe(200);

      const list = await t.http
        .get('/auth/tokens')
        .set('Authorization', bearer(current.token));
      expect(list.body).toEqual([
        expect.objectContaining({ id: current.row.id, current: true }),
      ]);
    });

    it('with no other token is 204 and keeps the current one', async () => {
      const current = await loginWithRow(t, 'alice');
      const res = await t.http
        .post('/auth/logoutothers')
        .set('Authorization', bearer(current.token));
      expect(res.status).toBe(204);
      expect(await rowIds(t)).toEqual([current.row.id]);
      expect(eventsNamed(t, KnoxEvents.TOKEN_REVOKED)).toHaveLength(0);
    });

    it('needs a token, and GET is 405 after authentication', async () => {
      await login(t, 'alice');
      expect((await t.http.post('/auth/logoutothers')).status).toBe(401);
      const current = await login(t, 'alice');
      const get = await t.http
        .get('/auth/logoutothers')
        .set('Authorization', bearer(current));
      expect(get.status).toBe(405);
      expect(await t.tokenRows()).toHaveLength(2);
      expect((await rowOf(t, current)).id).toBeDefined();
    });
  });
});
