/**
 * Issue 4: the server-side API of `KnoxTokenService` (what the session routes do, for apps):
 * `list`, `revokeById`, `revokeAll` (optionally sparing one, e.g. on a password change),
 * `refresh`, `rotate`, `revoke`, `create`.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { NotFoundException, UnauthorizedException } from '@nestjs/common';
import { KnoxEvents, KnoxTokenService } from '../../../lib/index.js';
import { login, useTestApp } from '../../support/test-app.js';
import type { TestUser } from '../../support/fixtures.js';
import { sql } from '../../support/test-db.js';
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

const at = (ms: number) => new Date(T0.getTime() + ms);

describe('KnoxTokenService, server side', () => {
  const t = useTestApp({}, async (app) => ({
    alice: await app.createUser('alice'),
    bob: await app.createUser('bob'),
  }));
  let knox: KnoxTokenService;
  beforeAll(() => {
    knox = t.app.get(KnoxTokenService);
  });

  describe('create', () => {
    it('refuses a name the column cannot hold, clamps an IP, and writes nothing for a bad name', async () => {
      await expect(
        knox.create(t.seeded.alice, { name: 'x'.repeat(201) }),
      ).rejects.toThrow(/token name must be a string of at most 200/);
      expect(await t.tokenRows()).toHaveLength(0);
      const issued = await knox.create(t.seeded.alice, {
        name: 'CI deploy key',
        ip: '2001:db8:0:0:0:0:0:1%eth0-with-a-very-long-zone-id',
        ttl: null,
      });
      const [row] = await t.tokenRows();
      expect(row.name).toBe('CI deploy key');
      expect(row.ip).toHaveLength(45);
      expect(row.expiry).toBeNull();
      const me = await t.http
        .get('/me')
        .set('Authorization', `Token ${issued.token}`);
      expect(me.status).toBe(200);
    });
  });

  describe('revokeAll', () => {
    it('on a password change, revokes every other session of the user and spares the current one', async () => {
      const current = await loginWithRow(t, 'alice', { name: 'current' });
      const phone = await loginWithRow(t, 'alice', { name: 'phone' });
      const forever = await loginWithRow(t, 'alice', { name: 'forever' });
      await t.dataSource.query(
        sql(`UPDATE knox_authtoken SET expiry = NULL WHERE id = $1`),
        [forever.row.id],
      );
      const bobs = await loginWithRow(t, 'bob');
      t.events.length = 0;

      const count = await knox.revokeAll(t.seeded.alice.id, {
        except: current.row.id,
        ip: '10.0.0.9',
        userAgent: 'settings-page',
      });
      expect(count).toBe(2);
      expect(await rowIds(t)).toEqual([current.row.id, bobs.row.id].sort());
      expect(
        (await t.http.get('/me').set('Authorization', bearer(phone.token)))
          .status,
      ).toBe(401);
      expect(
        (await t.http.get('/me').set('Authorization', bearer(forever.token)))
          .status,
      ).toBe(401);
      expect(
        (await t.http.get('/me').set('Authorization', bearer(current.token)))
          .status,
      ).toBe(200);
      const revoked = eventsNamed(t, KnoxEvents.TOKEN_REVOKED);
      expect(revoked.map((e) => e.tokenId).sort()).toEqual(
        [phone.row.id, forever.row.id].sort(),
      );
      for (const e of revoked) {
        expect(e).toEqual({
          userId: t.seeded.alice.id,
          tokenId: expect.any(String),
          tokenKey: expect.any(String),
          ip: '10.0.0.9',
          userAgent: 'settings-page',
          reason: 'app',
        });
      }
      expect(eventsNamed(t, KnoxEvents.LOGOUT_ALL)).toHaveLength(0);
    });

    it('when an account is disabled, revokes all its tokens and nobody else’s', async () => {
      await login(t, 'alice');
      await login(t, 'alice');
      const bobs = await loginWithRow(t, 'bob');
      expect(await knox.revokeAll(t.seeded.alice.id)).toBe(2);
      expect(await rowIds(t)).toEqual([bobs.row.id]);
      expect(
        eventsNamed(t, KnoxEvents.TOKEN_REVOKED).every(
          (e) => e.reason === 'app',
        ),
      ).toBe(true);
      expect(await knox.revokeAll(t.seeded.alice.id)).toBe(0);
    });

    it('an except that is no token id spares nothing (and is no database error)', async () => {
      await login(t, 'alice');
      await login(t, 'alice');
      expect(
        await knox.revokeAll(t.seeded.alice.id, { except: 'not-a-token-id' }),
      ).toBe(2);
      expect(await t.tokenRows()).toHaveLength(0);
    });
  });

  describe('revokeById', () => {
    it("revokes one of the user's tokens by its public id", async () => {
      const a = await loginWithRow(t, 'alice');
      const b = await loginWithRow(t, 'alice');
      t.events.length = 0;
      await knox.revokeById(t.seeded.alice.id, b.row.id);
      expect(await rowIds(t)).toEqual([a.row.id]);
      expect(eventsNamed(t, KnoxEvents.TOKEN_REVOKED)).toEqual([
        {
          userId: t.seeded.alice.id,
          tokenId: b.row.id,
          tokenKey: b.token.slice(0, 15),
          ip: null,
          userAgent: null,
          reason: 'revoked-by-id',
        },
      ]);
    });

    it("throws NotFoundException for another user's, an unknown or a malformed id, deleting nothing", async () => {
      const a = await loginWithRow(t, 'alice');
      const bobs = await loginWithRow(t, 'bob');
      for (const id of [
        bobs.row.id,
        '00000000-0000-4000-8000-000000000000',
        'nope',
        '',
      ]) {
        await expect(
          knox.revokeById(t.seeded.alice.id, id),
        ).rejects.toBeInstanceOf(NotFoundException);
      }
      expect(await rowIds(t)).toEqual([a.row.id, bobs.row.id].sort());
      expect(eventsNamed(t, KnoxEvents.TOKEN_REVOKED)).toHaveLength(0);
    });
  });

  describe('list', () => {
    it("returns the user's live tokens, newest first, with the user loaded and no digest in JSON", async () => {
      const a = await loginWithRow(t, 'alice', { name: 'a' });
      t.clock.advance(MINUTE);
      const b = await loginWithRow(t, 'alice', { name: 'b' });
      await loginWithRow(t, 'bob');
      const tokens = await knox.list(t.seeded.alice.id);
      expect(tokens.map((tok) => tok.id)).toEqual([b.row.id, a.row.id]);
      expect(tokens.map((tok) => (tok.user as TestUser).username)).toEqual([
        'alice',
        'alice',
      ]);
      expect(tokens[0]).toMatchObject({
        name: 'b',
        created: at(MINUTE),
        expiry: at(MINUTE + 10 * HOUR),
        lastUsedAt: at(MINUTE),
        retiredAt: null,
      });
      const json = JSON.stringify(tokens);
      expect(json).not.toContain(a.row.digest);
      expect(json).not.toContain(b.row.digest);
      expect(json).not.toContain('secret-password');

      t.clock.set(at(10 * HOUR + MINUTE + 1));
      expect(await knox.list(t.seeded.alice.id)).toEqual([]);
    });
  });

  describe('refresh and rotate on a listed token', () => {
    it('refresh extends the expiry now and emits token-refreshed', async () => {
      const a = await loginWithRow(t, 'alice');
      t.clock.set(at(3 * HOUR));
      const [token] = await knox.list(t.seeded.alice.id);
      t.events.length = 0;
      expect(await knox.refresh(token)).toEqual(at(13 * HOUR));
      expect((await rowOf(t, a.token)).expiry).toEqual(at(13 * HOUR));
      expect(eventsNamed(t, KnoxEvents.TOKEN_REFRESHED)).toEqual([
        {
          userId: t.seeded.alice.id,
          tokenId: a.row.id,
          tokenKey: a.token.slice(0, 15),
          ip: null,
          userAgent: null,
          expiry: at(13 * HOUR),
        },
      ]);
    });

    it('refresh of a token revoked meanwhile throws 401 (a race with logout is no 500)', async () => {
      const a = await loginWithRow(t, 'alice');
      const [token] = await knox.list(t.seeded.alice.id);
      const out = await t.http
        .post('/auth/logout')
        .set('Authorization', bearer(a.token));
      expect(out.status).toBe(204);
      t.clock.set(at(HOUR));
      await expect(knox.refresh(token)).rejects.toBeInstanceOf(
        UnauthorizedException,
      );
      expect(await t.tokenRows()).toHaveLength(0);
    });

    it('rotate issues the replacement (plaintext once) and revokes the old token', async () => {
      const a = await loginWithRow(t, 'alice', { name: 'kiosk' });
      t.clock.set(at(HOUR));
      const [token] = await knox.list(t.seeded.alice.id);
      t.events.length = 0;
      const issued = await knox.rotate(token, {
        ip: '10.1.1.1',
        userAgent: 'admin',
      });
      expect(issued.token).toMatch(/^[0-9a-f]{64}$/);
      expect(issued.record).toMatchObject({
        name: 'kiosk',
        created: T0,
        expiry: at(11 * HOUR),
      });
      expect(await rowIds(t)).toEqual([issued.record.id]);
      expect(
        (await t.http.get('/me').set('Authorization', bearer(issued.token)))
          .status,
      ).toBe(200);
      expect(
        (await t.http.get('/me').set('Authorization', bearer(a.token))).status,
      ).toBe(401);
      expect(eventsNamed(t, KnoxEvents.TOKEN_ROTATED)).toEqual([
        {
          userId: t.seeded.alice.id,
          tokenId: a.row.id,
          tokenKey: a.token.slice(0, 15),
          ip: '10.1.1.1',
          userAgent: 'admin',
          newTokenId: issued.record.id,
          oldTokenValidUntil: null,
          abilities: null,
        },
      ]);
      expect(
        eventsNamed(t, KnoxEvents.TOKEN_REVOKED).map((e) => e.reason),
      ).toEqual(['rotated']);
      expect(eventsJson(t)).not.toContain(issued.token);
      expect(JSON.stringify(issued.record)).not.toContain(issued.record.digest);
    });

    it('rotate loads the owner of a record given without its user', async () => {
      await loginWithRow(t, 'alice');
      const [token] = await knox.list(t.seeded.alice.id);
      delete token.user;
      const issued = await knox.rotate(token);
      expect((issued.record.user as TestUser).id).toBe(t.seeded.alice.id);
      const [row] = await t.tokenRows();
      expect(row.user_id).toBe(t.seeded.alice.id);
    });

    it('revoke (reason app by default) and create, server side', async () => {
      const issued = await knox.create(t.seeded.bob, {
        name: 'cli',
        ttl: HOUR,
        ip: '10.2.2.2',
      });
      expect(issued.record).toMatchObject({
        name: 'cli',
        expiry: at(HOUR),
        ip: '10.2.2.2',
      });
      expect(
        (await t.http.get('/me').set('Authorization', bearer(issued.token)))
          .status,
      ).toBe(200);
      const [token] = await knox.list(t.seeded.bob.id);
      t.events.length = 0;
      expect(await knox.revoke(token)).toBe(true);
      expect(await knox.revoke(token)).toBe(false);
      expect(await t.tokenRows()).toHaveLength(0);
      expect(t.events).toEqual([
        {
          name: KnoxEvents.TOKEN_REVOKED,
          payload: {
            userId: t.seeded.bob.id,
            tokenId: issued.record.id,
            tokenKey: issued.token.slice(0, 15),
            ip: null,
            userAgent: null,
            reason: 'app',
          },
        },
      ]);
    });

    it('revoke takes an options object, as revokeById and revokeAll do; the positional form still works', async () => {
      const first = await knox.create(t.seeded.bob, { name: 'a' });
      const second = await knox.create(t.seeded.bob, { name: 'b' });
      t.events.length = 0;
      expect(
        await knox.revoke(first.record, {
          reason: 'logout',
          ip: '198.51.100.9',
          userAgent: 'Admin/1',
        }),
      ).toBe(true);
      expect(
        await knox.revoke(second.record, 'evicted', { ip: '198.51.100.10' }),
      ).toBe(true);
      expect(await t.tokenRows()).toHaveLength(0);
      expect(
        t.events.map((e) => [e.name, e.payload.reason, e.payload.ip]),
      ).toEqual([
        [KnoxEvents.TOKEN_REVOKED, 'logout', '198.51.100.9'],
        [KnoxEvents.LOGOUT, undefined, '198.51.100.9'],
        [KnoxEvents.TOKEN_REVOKED, 'evicted', '198.51.100.10'],
      ]);
      expect(t.events[1].payload.userAgent).toBe('Admin/1');
    });
  });
});
