import { describe, expect, it } from '@jest/globals';
import { Controller, Get, UseGuards } from '@nestjs/common';
import { getRepositoryToken } from '@nestjs/typeorm';
import pg from 'pg';
import type { Repository } from 'typeorm';
import {
  KnoxAuth,
  KnoxEvents,
  KnoxGuard,
  KnoxTokenService,
  knoxTokenEntity,
  type KnoxToken,
} from '../../../lib/index.js';
import { TestUser } from '../../support/fixtures.js';
import { PLATFORMS } from '../../support/platforms.js';
import {
  DATABASE_URL,
  EMBEDDED_DB,
  login,
  useTestApp,
  type TestApp,
} from '../../support/test-app.js';
import { MESSAGES, expectUnauthorized } from '../../support/http.js';
import { HOUR, MINUTE, SECOND, T0 as START } from '../../support/time.js';
import { TEST_DB, describeOn } from '../../support/test-db.js';

/** Where every test's clock starts, in milliseconds. */
const T0 = START.getTime();
const at = (ms: number) => new Date(T0 + ms).toISOString();

/** Shows what the guard left on `request.auth`. */
@Controller()
class SessionController {
  @UseGuards(KnoxGuard)
  @Get('session')
  session(@KnoxAuth() auth: KnoxToken) {
    return { expiry: auth.expiry, json: auth };
  }
}

async function expiryOf(t: TestApp): Promise<string | null> {
  const rows = await t.tokenRows();
  expect(rows).toHaveLength(1);
  return rows[0].expiry ? rows[0].expiry.toISOString() : null;
}

describe('expiry, with auto refresh off (the default)', () => {
  const t = useTestApp({}, (app) => app.createUser('alice'));

  const me = (token: string) =>
    t.http.get('/me').set('Authorization', `Token ${token}`);

  it('an expired token: 401 "Invalid token.", the row deleted; at the exact instant of expiry it still works', async () => {
    const token = await login(t, 'alice');
    t.clock.set(T0 + 10 * HOUR);
    expect((await me(token)).status).toBe(200);
    t.clock.set(T0 + 10 * HOUR + 1);
    expectUnauthorized(await me(token), MESSAGES.INVALID_TOKEN);
    expect(await t.tokenRows()).toHaveLength(0);
    expectUnauthorized(await me(token), MESSAGES.INVALID_TOKEN);
  });

  it('knox.token-expired fires (once) on use of an expired token', async () => {
    const token = await login(t, 'alice');
    const [row] = await t.tokenRows();
    t.clock.advance(11 * HOUR);
    await me(token);
    await me(token);
    const expired = t.events.filter((e) => e.name === KnoxEvents.TOKEN_EXPIRED);
    expect(expired).toHaveLength(1);
    expect(expired[0].payload).toMatchObject({
      userId: row.user_id,
      tokenId: row.id,
      tokenKey: token.slice(0, 15),
    });
    expect(JSON.stringify(expired[0].payload)).not.toContain(token);
  });

  it('no refresh when autoRefresh is off', async () => {
    const token = await login(t, 'alice');
    t.clock.advance(5 * HOUR);
    expect((await me(token)).status).toBe(200);
    expect(await expiryOf(t)).toBe(at(10 * HOUR));
    expect(t.events.some((e) => e.name === KnoxEvents.TOKEN_REFRESHED)).toBe(
      false,
    );
    t.clock.set(T0 + 10 * HOUR + SECOND);
    expectUnauthorized(await me(token), MESSAGES.INVALID_TOKEN);
  });

  it('expired siblings are not deleted on the request path', async () => {
    const service = t.app.get(KnoxTokenService);
    const alice = await t.dataSource
      .getRepository(TestUser)
      .findOneByOrFail({ username: 'alice' });
    const token = await login(t, 'alice');
    await service.create(alice, { ttl: HOUR });
    await service.create(alice, { ttl: 2 * HOUR });
    t.clock.advance(3 * HOUR);
    t.recorder.reset();
    expect((await me(token)).status).toBe(200);
    // The request's statements: the SELECT, and the (due) last-use UPDATE of this token only
    // (on MySQL/MariaDB, which have no UPDATE … RETURNING, followed by its read-back SELECT).
    const statements = [...t.recorder.statements];
    expect(statements[0]).toMatch(/^SELECT/);
    const touch = statements.slice(1);
    if (TEST_DB === 'mariadb' && touch.length === 2) {
      expect(touch[1]).toMatch(/^SELECT .* WHERE digest IN \(\?\)$/);
      touch.pop();
    }
    expect(touch).toEqual(touch.filter((sql) => /^UPDATE/.test(sql)));
    expect(touch.length).toBeLessThanOrEqual(1);
    expect(await t.tokenRows()).toHaveLength(3);
  });

  it('pruneExpired() deletes expired tokens in batches and keeps live and never-expiring ones', async () => {
    const service = t.app.get(KnoxTokenService);
    const users = t.dataSource.getRepository(TestUser);
    const alice = await users.findOneByOrFail({ username: 'alice' });
    const bob = await t.createUser('bob');
    for (let i = 0; i < 25; i += 1) {
      await service.create(i % 2 ? alice : bob, { ttl: HOUR });
    }
    const live = await login(t, 'alice');
    await service.create(bob, { ttl: null });
    await service.create(alice, { ttl: 5 * HOUR });
    t.clock.advance(HOUR);
    // At the exact instant of expiry a token is still live: nothing to prune.
    expect(await service.pruneExpired({ batchSize: 10 })).toBe(0);
    t.clock.advance(1);
    t.recorder.reset();
    expect(await service.pruneExpired({ batchSize: 10 })).toBe(25);
    const deletes = t.recorder.statements.filter((sql) => /^DELETE/i.test(sql));
    expect(deletes).toHaveLength(3);
    const rows = await t.tokenRows();
    expect(rows).toHaveLength(3);
    expect(rows.filter((r) => r.expiry === null)).toHaveLength(1);
    expect(await service.pruneExpired()).toBe(0);
    expect((await me(live)).status).toBe(200);
  });

  it('pruneExpired() refuses a batch size that is not a whole number >= 1 (0 would never end)', async () => {
    const service = t.app.get(KnoxTokenService);
    for (const batchSize of [0, -1, 2.5, Number.NaN, '10']) {
      await expect(
        Promise.race([
          service.pruneExpired({ batchSize: batchSize as number }),
          new Promise((_, reject) =>
            setTimeout(() => reject(new Error('still running')), 2000),
          ),
        ]),
      ).rejects.toThrow(
        `KnoxTokenService: pruneExpired's batchSize must be a whole number >= 1; got ${String(batchSize)}.`,
      );
    }
  });
});

describe.each(PLATFORMS)('auto refresh (%s)', (platform) => {
  const t = useTestApp(
    {
      platform,
      knox: { autoRefresh: true },
      controllers: [SessionController],
    },
    (app) => app.createUser('alice'),
  );

  const me = (token: string) =>
    t.http.get('/me').set('Authorization', `Token ${token}`);

  it('a use at T0+5h moves the expiry to T0+15h; the token works at T0+11h and fails 1 s after its new expiry', async () => {
    const token = await login(t, 'alice');
    expect(await expiryOf(t)).toBe(at(10 * HOUR));
    t.clock.set(T0 + 5 * HOUR);
    expect((await me(token)).status).toBe(200);
    expect(await expiryOf(t)).toBe(at(15 * HOUR));
    t.clock.set(T0 + 11 * HOUR);
    expect((await me(token)).status).toBe(200);
    const newExpiry = new Date((await expiryOf(t))!).getTime();
    expect(newExpiry).toBe(T0 + 21 * HOUR);
    t.clock.set(newExpiry + SECOND);
    expectUnauthorized(await me(token), MESSAGES.INVALID_TOKEN);
  });

  it('no write within minRefreshInterval (60 s): the expiry moves only past it', async () => {
    const token = await login(t, 'alice');
    t.clock.set(T0 + 30 * SECOND);
    t.recorder.reset();
    expect((await me(token)).status).toBe(200);
    expect(t.recorder.writes).toHaveLength(0);
    expect(await expiryOf(t)).toBe(at(10 * HOUR));
    t.clock.set(T0 + MINUTE);
    expect((await me(token)).status).toBe(200);
    expect(await expiryOf(t)).toBe(at(10 * HOUR));
    t.clock.set(T0 + MINUTE + 1);
    t.recorder.reset();
    expect((await me(token)).status).toBe(200);
    expect(t.recorder.writes).toHaveLength(1);
    expect(await expiryOf(t)).toBe(at(10 * HOUR + MINUTE + 1));
  });

  it('emits knox.token-refreshed only when the expiry is written', async () => {
    const token = await login(t, 'alice');
    t.clock.set(T0 + 30 * SECOND);
    await me(token);
    expect(
      t.events.filter((e) => e.name === KnoxEvents.TOKEN_REFRESHED),
    ).toHaveLength(0);
    t.clock.set(T0 + 2 * MINUTE);
    await me(token);
    const refreshed = t.events.filter(
      (e) => e.name === KnoxEvents.TOKEN_REFRESHED,
    );
    expect(refreshed).toHaveLength(1);
    expect(refreshed[0].payload).toMatchObject({
      tokenKey: token.slice(0, 15),
      expiry: new Date(T0 + 2 * MINUTE + 10 * HOUR),
    });
  });

  it('request.auth.expiry always equals the row: unchanged when no write was due (knox #383)', async () => {
    const token = await login(t, 'alice');
    const session = () =>
      t.http.get('/session').set('Authorization', `Token ${token}`);

    t.clock.set(T0 + 30 * SECOND);
    const early = await session();
    expect(early.status).toBe(200);
    expect(early.body.expiry).toBe(at(10 * HOUR));
    expect(await expiryOf(t)).toBe(early.body.expiry);

    t.clock.set(T0 + 2 * MINUTE);
    const later = await session();
    expect(later.body.expiry).toBe(at(10 * HOUR + 2 * MINUTE));
    expect(await expiryOf(t)).toBe(later.body.expiry);
    expect(later.body.json).not.toHaveProperty('digest');
  });

  it('a refresh racing a logout is 401 "Invalid token.", not a 500', async () => {
    const token = await login(t, 'alice');
    const repository = t.app.get<Repository<KnoxToken>>(
      getRepositoryToken(knoxTokenEntity(TestUser)),
    );
    // The store sends its statements through the repository's manager (per-dialect SQL).
    const manager = repository.manager;
    const query = manager.query;
    // The logout lands between the guard's SELECT and its refresh UPDATE.
    manager.query = async function (this: typeof manager, ...args) {
      if (/^UPDATE/.test(args[0])) {
        await t.dataSource.query('DELETE FROM knox_authtoken');
      }
      return query.apply(this, args);
    } as typeof manager.query;
    try {
      t.clock.set(T0 + HOUR);
      const res = await me(token);
      expectUnauthorized(res, MESSAGES.INVALID_TOKEN);
    } finally {
      manager.query = query;
    }
    expect(await t.tokenRows()).toHaveLength(0);
    expect(t.events.some((e) => e.name === KnoxEvents.TOKEN_REFRESHED)).toBe(
      false,
    );
  });
});

describe('auto refresh with autoRefreshMaxTtl: 12 h', () => {
  const t = useTestApp(
    { knox: { autoRefresh: true, autoRefreshMaxTtl: 12 * HOUR } },
    (app) => app.createUser('alice'),
  );

  it('caps the expiry at T0+12h; the token works at T0+12h and fails at T0+12h+1s', async () => {
    const token = await login(t, 'alice');
    const me = () => t.http.get('/me').set('Authorization', `Token ${token}`);
    t.clock.set(T0 + 5 * HOUR);
    expect((await me()).status).toBe(200);
    expect(await expiryOf(t)).toBe(at(12 * HOUR));
    t.clock.set(T0 + 11 * HOUR);
    expect((await me()).status).toBe(200);
    expect(await expiryOf(t)).toBe(at(12 * HOUR));
    t.clock.set(T0 + 12 * HOUR);
    expect((await me()).status).toBe(200);
    t.clock.set(T0 + 12 * HOUR + SECOND);
    expectUnauthorized(await me(), MESSAGES.INVALID_TOKEN);
  });
});

// Needs a second PostgreSQL session holding a row (PGlite has one). SKIP LOCKED is
// PostgreSQL's: MySQL/MariaDB's prune has no SKIP LOCKED for a delete (it may wait for a held
// row, docs/database.md), SQLite has no row locks.
(EMBEDDED_DB
  ? describe.skip
  : (name: string, fn: () => void) => describeOn(['postgres'], name, fn))(
  'pruneExpired() beside other transactions',
  () => {
    const t = useTestApp({}, (app) => app.createUser('alice'));

    it('skips an expired row another transaction holds instead of waiting for it, and deletes it on the next run', async () => {
      const service = t.app.get(KnoxTokenService);
      const alice = await t.dataSource
        .getRepository(TestUser)
        .findOneByOrFail({ username: 'alice' });
      for (let i = 0; i < 5; i += 1) {
        await service.create(alice, { ttl: HOUR });
      }
      t.clock.advance(HOUR + 1);
      const [held] = await t.tokenRows();
      const other = new pg.Client({ connectionString: DATABASE_URL });
      await other.connect();
      try {
        await other.query('BEGIN');
        await other.query(
          'SELECT 1 FROM knox_authtoken WHERE digest = $1 FOR UPDATE',
          [held.digest],
        );
        // Would hang on the row lock without SKIP LOCKED.
        expect(
          await Promise.race([
            service.pruneExpired(),
            new Promise((resolve) => setTimeout(resolve, 5000, 'waited')),
          ]),
        ).toBe(4);
        expect((await t.tokenRows()).map((row) => row.digest)).toEqual([
          held.digest,
        ]);
      } finally {
        await other.query('ROLLBACK');
        await other.end();
      }
      expect(await service.pruneExpired()).toBe(1);
      expect(await t.tokenRows()).toHaveLength(0);
    });
  },
);
