/**
 * Issue 4: `lastUsedAt` without a write per request. A busy token costs at most one UPDATE per
 * interval, and when an auto refresh is due too, both go in that one UPDATE.
 */
import { beforeEach, describe, expect, it } from '@jest/globals';
import supertest from 'supertest';
import { KnoxEvents } from '../../../lib/index.js';
import {
  createTestApp,
  login,
  useTestApp,
  type TestApp,
} from '../../support/test-app.js';
import {
  HOUR,
  MINUTE,
  SECOND,
  T0,
  bearer,
  digestOf,
  eventsNamed,
  rowOf,
} from '../../support/sessions.js';
import { TEST_DB } from '../../support/test-db.js';
import { insertTokenRow } from '../../support/token-rows.js';

/** Sends `count` authenticated requests, the clock moving `step` ms before each; returns when writes happened. */
async function busyClient(
  t: TestApp,
  token: string,
  count: number,
  step: number,
): Promise<{ writeTimes: number[]; statements: number }> {
  const server = t.app.getHttpServer();
  if (!server.listening) {
    await new Promise<void>((resolve) =>
      server.listen(0, '127.0.0.1', resolve),
    );
  }
  const http = supertest(server);
  t.recorder.reset();
  const writeTimes: number[] = [];
  for (let i = 0; i < count; i++) {
    t.clock.advance(step);
    const before = t.recorder.writes.length;
    const res = await http.get('/me').set('Authorization', bearer(token));
    expect(res.status).toBe(200);
    if (t.recorder.writes.length > before) {
      writeTimes.push(t.clock.now().getTime() - T0.getTime());
    }
  }
  return { writeTimes, statements: t.recorder.statements.length };
}

const tokenWrites = (t: TestApp) =>
  t.recorder.writes.filter((sql) => /knox_authtoken/.test(sql));

/** Whether an UPDATE's SET clauses write `column` (quoted on PostgreSQL, bare elsewhere). */
const writesColumn = (sql: string, column: string) =>
  new RegExp(`(SET|,) ("${column}"|${column}) = `).test(sql);

/**
 * The statements of one touch: its UPDATE, and on MySQL/MariaDB (no UPDATE … RETURNING) the
 * SELECT that reads the row back (docs/database.md).
 */
const TOUCH_STATEMENTS = TEST_DB === 'mariadb' ? 2 : 1;

describe('lastUsedAt without a write per request', () => {
  describe('auto refresh off (default)', () => {
    const t = useTestApp({}, (app) => app.createUser('alice'));
    let aliceId: number;
    beforeEach(() => {
      aliceId = t.seeded.id;
    });

    it('100 requests in one minute cost at most one write, even across the interval boundary', async () => {
      const token = await login(t, 'alice');
      // Start half a minute after login so the minute of requests straddles the moment
      // lastUsedAt falls due.
      t.clock.advance(30 * SECOND);
      const { writeTimes, statements } = await busyClient(t, token, 100, 500);
      expect(writeTimes).toEqual([60.5 * SECOND]);
      expect(tokenWrites(t)).toHaveLength(1);
      expect(tokenWrites(t)[0]).toMatch(/^UPDATE/);
      // One query per request (token and user together), plus the one UPDATE.
      expect(statements).toBe(100 + TOUCH_STATEMENTS);
      const row = await rowOf(t, token);
      expect(row.last_used_at).toEqual(new Date(T0.getTime() + 60.5 * SECOND));
      // Without auto refresh the expiry never moves.
      expect(row.expiry).toEqual(new Date(T0.getTime() + 10 * HOUR));
      expect(eventsNamed(t, KnoxEvents.TOKEN_REFRESHED)).toHaveLength(0);
    });

    it('100 requests within the first minute after login cost no write at all', async () => {
      const token = await login(t, 'alice');
      const { writeTimes, statements } = await busyClient(t, token, 100, 500);
      expect(writeTimes).toEqual([]);
      expect(statements).toBe(100);
      expect((await rowOf(t, token)).last_used_at).toEqual(T0);
    });

    it('a busy token is written once per interval: five minutes of requests, four writes', async () => {
      const token = await login(t, 'alice');
      const { writeTimes } = await busyClient(t, token, 100, 3 * SECOND);
      expect(writeTimes).toEqual([63, 126, 189, 252].map((s) => s * SECOND));
      for (let i = 1; i < writeTimes.length; i++) {
        expect(writeTimes[i] - writeTimes[i - 1]).toBeGreaterThan(MINUTE);
      }
    });

    it('a row written by django-rest-knox (no last use yet) is written on first use, then not again within the minute', async () => {
      await insertTokenRow(t.dataSource, {
        digest: digestOf('d'.repeat(64)),
        token_key: 'd'.repeat(15),
        user_id: aliceId,
        created: T0,
        expiry: new Date(T0.getTime() + 10 * HOUR),
      });
      const { writeTimes } = await busyClient(t, 'd'.repeat(64), 100, 500);
      expect(writeTimes).toEqual([500]);
      expect((await rowOf(t, 'd'.repeat(64))).last_used_at).toEqual(
        new Date(T0.getTime() + 500),
      );
    });

    it('lastUsedUpdateInterval sets the interval', async () => {
      const slow = await createTestApp({
        knox: { lastUsedUpdateInterval: 5 * MINUTE },
        keepData: true,
      });
      try {
        const token = await login(slow, 'alice');
        const { writeTimes } = await busyClient(slow, token, 110, 3 * SECOND);
        expect(writeTimes).toEqual([303 * SECOND]);
      } finally {
        await slow.close();
      }
    });
  });

  describe('auto refresh on', () => {
    const t = useTestApp({ knox: { autoRefresh: true } }, (app) =>
      app.createUser('alice'),
    );
    let aliceId: number;
    beforeEach(() => {
      aliceId = t.seeded.id;
    });

    it('when last use and refresh are both due, one UPDATE writes both', async () => {
      const token = await login(t, 'alice');
      t.clock.advance(30 * SECOND);
      const { writeTimes, statements } = await busyClient(t, token, 100, 500);
      expect(writeTimes).toEqual([60.5 * SECOND]);
      const writes = tokenWrites(t);
      expect(writes).toHaveLength(1);
      expect(writes[0]).toMatch(/^UPDATE/);
      expect(writesColumn(writes[0], 'expiry')).toBe(true);
      expect(writesColumn(writes[0], 'last_used_at')).toBe(true);
      expect(statements).toBe(100 + TOUCH_STATEMENTS);

      const at = new Date(T0.getTime() + 60.5 * SECOND);
      const row = await rowOf(t, token);
      expect(row.last_used_at).toEqual(at);
      expect(row.expiry).toEqual(new Date(at.getTime() + 10 * HOUR));
      const refreshed = eventsNamed(t, KnoxEvents.TOKEN_REFRESHED);
      expect(refreshed).toEqual([
        {
          userId: aliceId,
          tokenId: row.id,
          tokenKey: token.slice(0, 15),
          ip: expect.any(String),
          userAgent: null,
          expiry: new Date(at.getTime() + 10 * HOUR),
        },
      ]);
      expect(JSON.stringify(t.events)).not.toContain(token);
    });

    it('five minutes of requests: four writes, each carrying both columns, none within a minute of another', async () => {
      const token = await login(t, 'alice');
      const { writeTimes } = await busyClient(t, token, 100, 3 * SECOND);
      expect(writeTimes).toEqual([63, 126, 189, 252].map((s) => s * SECOND));
      for (let i = 1; i < writeTimes.length; i++) {
        expect(writeTimes[i] - writeTimes[i - 1]).toBeGreaterThan(MINUTE);
      }
      for (const sql of tokenWrites(t)) {
        expect(writesColumn(sql, 'expiry')).toBe(true);
        expect(writesColumn(sql, 'last_used_at')).toBe(true);
      }
      expect(eventsNamed(t, KnoxEvents.TOKEN_REFRESHED)).toHaveLength(4);
      const row = await rowOf(t, token);
      expect(row.expiry).toEqual(
        new Date(T0.getTime() + 252 * SECOND + 10 * HOUR),
      );
      expect(row.last_used_at).toEqual(new Date(T0.getTime() + 252 * SECOND));
    });

    it('once the max TTL caps the expiry, only last use is written, still once per interval', async () => {
      const capped = await createTestApp({
        knox: { autoRefresh: true, autoRefreshMaxTtl: 10 * HOUR },
        keepData: true,
      });
      try {
        const token = await login(capped, 'alice');
        const { writeTimes } = await busyClient(capped, token, 100, 3 * SECOND);
        expect(writeTimes).toEqual([63, 126, 189, 252].map((s) => s * SECOND));
        for (const sql of tokenWrites(capped)) {
          expect(writesColumn(sql, 'last_used_at')).toBe(true);
          expect(writesColumn(sql, 'expiry')).toBe(false);
        }
        expect((await rowOf(capped, token)).expiry).toEqual(
          new Date(T0.getTime() + 10 * HOUR),
        );
        expect(eventsNamed(capped, KnoxEvents.TOKEN_REFRESHED)).toHaveLength(0);
      } finally {
        await capped.close();
      }
    });
  });
});
