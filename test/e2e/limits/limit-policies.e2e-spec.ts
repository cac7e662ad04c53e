/**
 * Issue 4: `tokenLimitPerUser` with a policy — `reject` (knox's 403), `evict-oldest`,
 * `evict-least-recently-used` — which token goes, what the evicted client sees, the events, and
 * that the limit holds exactly under 20 concurrent logins.
 */
import { describe, expect, it } from '@jest/globals';
import { KnoxEvents, type KnoxTokenLimitPolicy } from '../../../lib/index.js';
import { sql } from '../../support/test-db.js';
import { dateParam } from '../../support/token-rows.js';
import {
  createTestApp,
  login,
  useTestApp,
  type TestApp,
} from '../../support/test-app.js';
import {
  HOUR,
  MINUTE,
  T0,
  bearer,
  digestOf,
  eventsJson,
  eventsNamed,
  loginWithRow,
  rowIds,
} from '../../support/sessions.js';

const NEW_DEVICE_UA = 'NewDevice/1.0';

async function loginAs(t: TestApp, username: string, name?: string) {
  return t.http
    .post('/auth/login')
    .set('User-Agent', NEW_DEVICE_UA)
    .send({ username, password: 'secret-password', ...(name ? { name } : {}) });
}

describe('token limit policies', () => {
  describe.each(['evict-oldest', 'evict-least-recently-used'] as const)(
    '%s',
    (policy) => {
      const t = useTestApp(
        { knox: { tokenLimitPerUser: 3, tokenLimitPolicy: policy } },
        async (app) => ({
          aliceId: (await app.createUser('alice')).id,
          bobId: (await app.createUser('bob')).id,
        }),
      );

      it('evicts the right token: refused afterwards, event with reason evicted', async () => {
        const a = await loginWithRow(t, 'alice', { name: 'a' });
        t.clock.advance(MINUTE);
        const b = await loginWithRow(t, 'alice', { name: 'b' });
        t.clock.advance(MINUTE);
        const c = await loginWithRow(t, 'alice', { name: 'c' });
        const bobs = await loginWithRow(t, 'bob');
        // The oldest token is the one in use; b is the one used least recently.
        t.clock.advance(5 * MINUTE);
        expect(
          (await t.http.get('/me').set('Authorization', bearer(a.token)))
            .status,
        ).toBe(200);
        t.events.length = 0;

        const res = await loginAs(t, 'alice', 'd');
        expect(res.status).toBe(200);
        const evicted = policy === 'evict-oldest' ? a : b;
        const kept = policy === 'evict-oldest' ? [b, c] : [a, c];
        const d = await t.dataSource.query(
          sql(`SELECT id FROM knox_authtoken WHERE digest = $1`),
          [digestOf(res.body.token)],
        );
        expect(await rowIds(t)).toEqual(
          [...kept.map((k) => k.row.id), d[0].id, bobs.row.id].sort(),
        );

        const refused = await t.http
          .get('/me')
          .set('Authorization', bearer(evicted.token));
        expect(refused.status).toBe(401);
        expect(refused.body.message).toBe('Invalid token.');
        for (const k of [...kept, bobs]) {
          expect(
            (await t.http.get('/me').set('Authorization', bearer(k.token)))
              .status,
          ).toBe(200);
        }

        expect(eventsNamed(t, KnoxEvents.TOKEN_REVOKED)).toEqual([
          {
            userId: t.seeded.aliceId,
            tokenId: evicted.row.id,
            tokenKey: evicted.token.slice(0, 15),
            ip: expect.any(String),
            userAgent: NEW_DEVICE_UA,
            reason: 'evicted',
          },
        ]);
        expect(eventsNamed(t, KnoxEvents.LOGIN)).toHaveLength(1);
        const text = eventsJson(t);
        for (const s of [a, b, c]) expect(text).not.toContain(s.token);
        expect(text).not.toContain(res.body.token);
      });

      it('never-expiring tokens count and can be evicted; expired ones neither count nor go', async () => {
        const forever = await loginWithRow(t, 'alice');
        await t.dataSource.query(
          sql(`UPDATE knox_authtoken SET expiry = NULL WHERE id = $1`),
          [forever.row.id],
        );
        t.clock.advance(MINUTE);
        const expiring = await loginWithRow(t, 'alice');
        await t.dataSource.query(
          sql(`UPDATE knox_authtoken SET expiry = $1 WHERE id = $2`),
          [dateParam(new Date(T0.getTime() + 2 * MINUTE)), expiring.row.id],
        );
        t.clock.advance(MINUTE);
        const second = await loginWithRow(t, 'alice');
        t.clock.advance(MINUTE);
        const third = await loginWithRow(t, 'alice');
        // Now: forever, second, third live; expiring expired (not pruned). The limit is reached.
        t.events.length = 0;
        const res = await loginAs(t, 'alice');
        expect(res.status).toBe(200);
        const ids = await rowIds(t);
        expect(ids).not.toContain(forever.row.id);
        expect(ids).toContain(expiring.row.id);
        expect(ids).toContain(second.row.id);
        expect(ids).toContain(third.row.id);
        // Three live ones (the new token among them) and the expired one.
        expect(ids).toHaveLength(4);
        expect(
          eventsNamed(t, KnoxEvents.TOKEN_REVOKED).map((e) => e.tokenId),
        ).toEqual([forever.row.id]);
      });

      it('another user at the limit is untouched', async () => {
        for (let i = 0; i < 3; i++) await login(t, 'bob');
        const bobIds = await rowIds(t);
        await login(t, 'alice');
        expect(await rowIds(t)).toEqual(expect.arrayContaining(bobIds));
        expect(await t.tokenRows()).toHaveLength(4);
        expect(eventsNamed(t, KnoxEvents.TOKEN_REVOKED)).toHaveLength(0);
      });
    },
  );

  describe('reject (default)', () => {
    const t = useTestApp({ knox: { tokenLimitPerUser: 3 } }, (app) =>
      app.createUser('alice'),
    );

    it("answers knox's 403 and keeps every token", async () => {
      const tokens = [
        await login(t, 'alice'),
        await login(t, 'alice'),
        await login(t, 'alice'),
      ];
      const ids = await rowIds(t);
      t.events.length = 0;
      const res = await loginAs(t, 'alice');
      expect(res.status).toBe(403);
      expect(res.body).toEqual({
        statusCode: 403,
        error: 'Forbidden',
        message: 'Maximum amount of tokens allowed per user exceeded.',
      });
      expect(await rowIds(t)).toEqual(ids);
      expect(t.events).toEqual([]);
      for (const token of tokens) {
        expect(
          (await t.http.get('/me').set('Authorization', bearer(token))).status,
        ).toBe(200);
      }
      // An expired token frees its place.
      t.clock.set(T0.getTime() + 10 * HOUR + 1);
      expect((await loginAs(t, 'alice')).status).toBe(200);
    });
  });

  it('refuses an unknown policy at boot, saying what to fix', async () => {
    await expect(
      createTestApp({
        knox: {
          tokenLimitPerUser: 3,
          tokenLimitPolicy: 'evict-newest' as KnoxTokenLimitPolicy,
        },
      }),
    ).rejects.toThrow(
      "KnoxModule: `tokenLimitPolicy` must be one of 'reject', 'evict-oldest', 'evict-least-recently-used'; got evict-newest.",
    );
  });

  describe.each([
    'reject',
    'evict-oldest',
    'evict-least-recently-used',
  ] as const)('20 concurrent logins, limit 3, %s', (policy) => {
    const t = useTestApp(
      { knox: { tokenLimitPerUser: 3, tokenLimitPolicy: policy } },
      (app) => app.createUser('alice'),
    );

    it('the limit holds exactly', async () => {
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          loginAs(t, 'alice', `device ${i}`),
        ),
      );
      const statuses = answers.map((r) => r.status).sort();
      const rows = await t.tokenRows();
      expect(rows).toHaveLength(3);
      const issued = answers
        .filter((r) => r.status === 200)
        .map((r) => r.body.token as string);
      const rowDigests = rows.map((r) => r.digest).sort();

      if (policy === 'reject') {
        expect(statuses).toEqual([
          ...Array(3).fill(200),
          ...Array(17).fill(403),
        ]);
        expect(issued.map(digestOf).sort()).toEqual(rowDigests);
        expect(eventsNamed(t, KnoxEvents.TOKEN_REVOKED)).toHaveLength(0);
        expect(eventsNamed(t, KnoxEvents.LOGIN)).toHaveLength(3);
        return;
      }

      expect(statuses).toEqual(Array(20).fill(200));
      const survivors = issued.filter((tok) =>
        rowDigests.includes(digestOf(tok)),
      );
      const evicted = issued.filter(
        (tok) => !rowDigests.includes(digestOf(tok)),
      );
      expect(survivors).toHaveLength(3);
      expect(evicted).toHaveLength(17);

      const logins = eventsNamed(t, KnoxEvents.LOGIN);
      const revoked = eventsNamed(t, KnoxEvents.TOKEN_REVOKED);
      expect(logins).toHaveLength(20);
      expect(revoked).toHaveLength(17);
      expect(new Set(revoked.map((e) => e.tokenId)).size).toBe(17);
      expect(revoked.every((e) => e.reason === 'evicted')).toBe(true);
      const survivorIds = rows.map((r) => r.id);
      expect(revoked.some((e) => survivorIds.includes(e.tokenId))).toBe(false);
      expect(eventsJson(t)).not.toMatch(/[0-9a-f]{64}/);

      for (const tok of survivors) {
        expect(
          (await t.http.get('/me').set('Authorization', bearer(tok))).status,
        ).toBe(200);
      }
      for (const tok of evicted.slice(0, 5)) {
        expect(
          (await t.http.get('/me').set('Authorization', bearer(tok))).status,
        ).toBe(401);
      }
    });
  });
});
