/**
 * Issue 10: the cache on one instance: no round trip for a cached token, `maxAge` and the
 * token's expiry honoured with a fake clock, memory bounded by `max`, unknown tokens never
 * cached, lastUsedAt / auto refresh written at most once per interval with the entry carrying
 * the new values, `invalidateUser`, and the option checked at boot.
 */
import { describe, expect, it } from '@jest/globals';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  KnoxEvents,
  KnoxGuard,
  KnoxTokenService,
  type KnoxRequest,
} from '../../../lib/index.js';
import { KNOX_RESOLVED_OPTIONS } from '../../../lib/knox.constants.js';
import {
  EMBEDDED_DB,
  createTestApp,
  createTestApp as boot,
  login,
  useTestApp,
  type TestApp,
} from '../../support/test-app.js';
import {
  bearer,
  cacheOf,
  caughtUp,
  dateOf,
  dateParam,
  probe,
  probeVouched,
  refusedWithin,
  until,
  warm,
} from '../../support/cache.js';
import { HOUR, MINUTE, SECOND, T0, digestOf } from '../../support/sessions.js';
import { TEST_DB, sql } from '../../support/test-db.js';

const suite = EMBEDDED_DB ? describe.skip : describe;
const at = (ms: number) => new Date(T0.getTime() + ms);
/**
 * The statements of a request-path write (lastUsedAt, auto refresh): one UPDATE … RETURNING on
 * PostgreSQL and SQLite; on MySQL/MariaDB (no RETURNING on UPDATE) the UPDATE and the read of
 * what it wrote.
 */
const TOUCH_STATEMENTS = TEST_DB === 'mariadb' ? 2 : 1;

suite.each(['express', 'fastify'] as const)(
  'cache on one instance (%s)',
  (platform) => {
    describe('defaults (cache: true)', () => {
      const t = useTestApp({ platform, knox: { cache: true } }, async (app) => {
        await app.createUser('alice');
        await app.createUser('bob');
      });

      it('answers a cached token with 0 queries, the same user and token record', async () => {
        await caughtUp(t);
        const token = await login(t, 'alice');
        const first = await t.http.get('/me').set(bearer(token)).expect(200);
        t.recorder.reset();
        for (let i = 0; i < 50; i++) {
          await until(() => cacheOf(t).available, 'a fresh read of the bus');
          const res = await t.http.get('/me').set(bearer(token)).expect(200);
          expect(res.body).toEqual(first.body);
        }
        expect(t.recorder.queries).toEqual([]);
      });

      it('never caches an unknown or malformed token', async () => {
        const unknown = 'f'.repeat(64);
        // The previous test's entries leave once the bus brings reset()'s deletions.
        await until(() => cacheOf(t).store!.size === 0, "reset()'s deletions");
        for (let i = 0; i < 3; i++) {
          expect(await probe(t, unknown)).toEqual({ status: 401, queries: 1 });
        }
        expect(cacheOf(t).store!.size).toBe(0);
      });

      it('refuses a cached token once it expires (fake clock), and deletes it as without the cache', async () => {
        const token = await login(t, 'alice');
        t.clock.set(at(10 * HOUR - 30 * SECOND));
        await warm(t, token);
        t.clock.set(at(10 * HOUR - 1));
        expect(await probe(t, token)).toEqual({ status: 200, queries: 0 });
        // Cached (and younger than maxAge) at its expiry: refused all the same.
        expect(cacheOf(t).lookup(digestOf(token))).toBeDefined();
        t.clock.set(at(10 * HOUR + 1));
        expect((await probe(t, token)).status).toBe(401);
        expect(await t.tokenRows()).toEqual([]);
        expect(t.events.map((e) => e.name)).toContain(KnoxEvents.TOKEN_EXPIRED);
        expect((await probe(t, token)).status).toBe(401);
      });

      it('asks the database again after maxAge (60 s by default)', async () => {
        const token = await login(t, 'alice');
        await warm(t, token);
        t.clock.advance(60 * SECOND - 1);
        expect(await probe(t, token)).toEqual({ status: 200, queries: 0 });
        t.clock.advance(1);
        expect(await probe(t, token)).toEqual({ status: 200, queries: 1 });
        expect(await probe(t, token)).toEqual({ status: 200, queries: 0 });
      });

      it('invalidateUser drops the user’s tokens from the cache, and only theirs', async () => {
        const alice = await login(t, 'alice');
        const alice2 = await login(t, 'alice');
        const bob = await login(t, 'bob');
        for (const token of [alice, alice2, bob]) {
          await warm(t, token);
        }
        const [{ id }] = (await t.dataSource.query(
          `SELECT id FROM knox_test_user WHERE username = 'alice'`,
        )) as { id: number }[];
        t.app.get(KnoxTokenService).invalidateUser(id);
        expect(await probe(t, alice)).toEqual({ status: 200, queries: 1 });
        expect(await probe(t, alice2)).toEqual({ status: 200, queries: 1 });
        expect(await probe(t, bob)).toEqual({ status: 200, queries: 0 });
      });

      it('KnoxGuard answers a cached token without a promise; a miss, a refusal and an overridden authenticate stay asynchronous', async () => {
        const token = await login(t, 'alice');
        const guard = (tokens: KnoxTokenService) =>
          new KnoxGuard(
            tokens,
            new Reflector(),
            t.app.get(KNOX_RESOLVED_OPTIONS),
          );
        const context = (authorization: string) => {
          const request: KnoxRequest = { headers: { authorization } };
          const http = {
            getRequest: () => request,
            getResponse: () => ({ header: () => undefined }),
          };
          return {
            request,
            context: {
              getType: () => 'http',
              getHandler: () => context,
              getClass: () => KnoxGuard,
              switchToHttp: () => http,
            } as unknown as ExecutionContext,
          };
        };
        const service = t.app.get(KnoxTokenService);
        // Not cached yet: through the database, a promise.
        const miss = context(`Token ${token}`);
        const first = guard(service).canActivate(miss.context);
        expect(first).toBeInstanceOf(Promise);
        await expect(first).resolves.toBe(true);
        // Cached, no write due: `true` at once, with the same user and record on the request.
        const hit = context(`Token ${token}`);
        t.recorder.reset();
        expect(guard(service).canActivate(hit.context)).toBe(true);
        expect(hit.request.user).toMatchObject({ username: 'alice' });
        expect(hit.request.auth).toMatchObject({
          tokenKey: token.slice(0, 15),
        });
        expect(t.recorder.queries).toEqual([]);
        // A refusal is a rejected promise, also when decided without the database.
        const malformed = guard(service).canActivate(
          context('Token !').context,
        );
        expect(malformed).toBeInstanceOf(Promise);
        await expect(malformed).rejects.toThrow('Invalid token.');
        // A service whose authenticate is overridden is asked every time, cached or not.
        class AuditedTokens extends KnoxTokenService {
          calls = 0;
          override authenticate(
            ...args: Parameters<KnoxTokenService['authenticate']>
          ) {
            this.calls++;
            return super.authenticate(...args);
          }
        }
        const audited = Object.setPrototypeOf(
          { ...service, calls: 0 },
          AuditedTokens.prototype,
        ) as AuditedTokens;
        await expect(
          guard(audited).canActivate(context(`Token ${token}`).context),
        ).resolves.toBe(true);
        expect(audited.calls).toBe(1);
      });

      it('a read racing a revocation never caches the revoked row (many trials)', async () => {
        for (let trial = 0; trial < 30; trial++) {
          const token = await login(t, 'alice');
          await Promise.all([
            t.http.get('/me').set(bearer(token)),
            t.dataSource.query(
              sql(`DELETE FROM knox_authtoken WHERE token_key = $1`),
              [token.slice(0, 15)],
            ),
          ]);
          expect(await refusedWithin(t, token)).toBeLessThan(100);
        }
      });
    });

    describe('legacy-digest upgrade', () => {
      const legacyDigest = (token: string) =>
        createHash('sha512').update(Buffer.from(token, 'hex')).digest('hex');
      const t = useTestApp(
        { platform, knox: { cache: true, legacyTokenDigests: [legacyDigest] } },
        (app) => app.createUser('alice'),
      );

      it('moves the row to the current digest first, then caches it under that digest', async () => {
        const token = randomBytes(32).toString('hex');
        // Off PostgreSQL the public id has no database default (the library always sets it).
        const id = TEST_DB === 'postgres' ? [] : [randomUUID()];
        await t.dataSource.query(
          sql(`INSERT INTO knox_authtoken (digest, token_key, user_id, created, expiry${id.length ? ', id' : ''})
         VALUES ($1, $2, $3, $4, $5${id.length ? ', $6' : ''})`),
          [
            legacyDigest(token),
            token.slice(0, 15),
            t.seeded.id,
            dateParam(at(-HOUR)),
            dateParam(at(9 * HOUR)),
            ...id,
          ],
        );
        const upgrade = await probe(t, token);
        expect(upgrade.status).toBe(200);
        expect(t.recorder.writes).toHaveLength(1);
        expect(cacheOf(t).lookup(legacyDigest(token))).toBeUndefined();
        expect(await probe(t, token)).toEqual({ status: 200, queries: 1 });
        expect(await probe(t, token)).toEqual({ status: 200, queries: 0 });
        const rows = await t.tokenRows();
        expect(rows.map((r) => r.digest)).toEqual([digestOf(token)]);
      });
    });

    describe('max bounds the memory', () => {
      const t = useTestApp({ platform, knox: { cache: { max: 3 } } }, (app) =>
        app.createUser('alice').then(() => undefined),
      );

      it('keeps at most max entries, the least recently used going first', async () => {
        const tokens: string[] = [];
        for (let i = 0; i < 6; i++) {
          tokens.push(await login(t, 'alice'));
        }
        for (const token of tokens) {
          expect((await probe(t, token)).status).toBe(200);
          expect(cacheOf(t).store!.size).toBeLessThanOrEqual(3);
        }
        expect(cacheOf(t).store!.size).toBe(3);
        expect(await probe(t, tokens[5])).toEqual({ status: 200, queries: 0 });
        expect(await probe(t, tokens[0])).toEqual({ status: 200, queries: 1 });
      });
    });

    describe('lastUsedAt and auto refresh', () => {
      const t = useTestApp(
        {
          platform,
          knox: {
            cache: { maxAge: 10 * HOUR },
            tokenTtl: HOUR,
            autoRefresh: true,
            minRefreshInterval: 20 * MINUTE,
            lastUsedUpdateInterval: 20 * MINUTE,
          },
        },
        (app) => app.createUser('alice').then(() => undefined),
      );

      it('writes at most once per interval, and the cached entry carries the new expiry', async () => {
        await caughtUp(t);
        const token = await login(t, 'alice');
        await warm(t, token);
        t.clock.set(at(30 * MINUTE));
        expect(await probeVouched(t, token)).toEqual({
          status: 200,
          queries: TOUCH_STATEMENTS,
        });
        expect(t.recorder.writes).toHaveLength(1);
        const entry = cacheOf(t).lookup(digestOf(token))!;
        expect(entry.token.expiry).toEqual(at(90 * MINUTE));
        expect(entry.token.lastUsedAt).toEqual(at(30 * MINUTE));
        for (let i = 0; i < 10; i++) {
          expect(await probeVouched(t, token)).toEqual({
            status: 200,
            queries: 0,
          });
        }
        // Past the expiry it was cached with, within the one it was refreshed to: still served.
        t.clock.set(at(61 * MINUTE));
        expect(await probeVouched(t, token)).toEqual({
          status: 200,
          queries: TOUCH_STATEMENTS,
        });
        expect(cacheOf(t).lookup(digestOf(token))!.token.expiry).toEqual(
          at(121 * MINUTE),
        );
        const [row] = await t.tokenRows();
        expect(dateOf(row.expiry)).toEqual(at(121 * MINUTE));
        expect(dateOf(row.last_used_at)).toEqual(at(61 * MINUTE));
      });

      it('concurrent requests when the write falls due: one UPDATE (many trials)', async () => {
        await caughtUp(t);
        const token = await login(t, 'alice');
        await warm(t, token);
        // A request that finds the cache not vouched for (the 'poll' bus's read late, as on a
        // loaded machine) goes to the database by design: such lookups are counted apart.
        const store = cacheOf(t).store!;
        const get = store.get.bind(store);
        let unvouched = 0;
        store.get = (...args) => {
          if (!store.available) {
            unvouched++;
          }
          return get(...args);
        };
        try {
          for (let trial = 1; trial <= 10; trial++) {
            t.clock.set(at(trial * 25 * MINUTE));
            t.recorder.reset();
            unvouched = 0;
            const answers = await Promise.all(
              Array.from({ length: 20 }, () =>
                t.http.get('/me').set(bearer(token)),
              ),
            );
            expect(answers.map((r) => r.status)).toEqual(Array(20).fill(200));
            expect(t.recorder.writes).toHaveLength(1);
            const lookups = t.recorder.statements.filter((sql) =>
              /INNER JOIN/.test(sql),
            ).length;
            expect(lookups).toBeLessThanOrEqual(unvouched);
            expect(t.recorder.queries).toHaveLength(TOUCH_STATEMENTS + lookups);
          }
        } finally {
          store.get = get;
        }
      });

      it('POST /auth/refresh updates the cached expiry on this instance', async () => {
        const token = await login(t, 'alice');
        await warm(t, token);
        t.clock.set(at(5 * MINUTE));
        await t.http.post('/auth/refresh').set(bearer(token)).expect(200);
        const entry = cacheOf(t).lookup(digestOf(token));
        if (entry) {
          expect(entry.token.expiry).toEqual(at(65 * MINUTE));
        }
        t.clock.set(at(64 * MINUTE));
        expect((await probe(t, token)).status).toBe(200);
      });
    });
  },
);

suite('cache option checked at boot', () => {
  const bad: [unknown, RegExp][] = [
    ['yes', /`cache` must be false, true or \{ max, maxAge, bus \}/],
    [{ max: 0 }, /`cache.max` must be a whole number of entries >= 1/],
    [{ maxAge: -1 }, /`cache.maxAge` must be a duration/],
    [{ size: 10 }, /unknown option\(s\) size/],
    [{ bus: 'redis' }, /`cache.bus` must be 'postgres', 'poll' or \{ redis \}/],
    [{ bus: 'poll', pollInterval: 0 }, /`cache.pollInterval` must be/],
    [
      { channel: 'Knox-Cache' },
      /`cache.channel` must be a lower-case SQL identifier/,
    ],
  ];
  it.each(bad)('refuses cache: %p', async (cache, message) => {
    await expect(boot({ knox: { cache: cache as never } })).rejects.toThrow(
      message,
    );
  });

  // `cache: true`'s bus: LISTEN/NOTIFY on PostgreSQL, the polled log elsewhere.
  const missing = (table: string) =>
    TEST_DB === 'postgres'
      ? new RegExp(
          `the cache's invalidation triggers are missing on ${table}: add knoxCacheMigrations\\(\\{ tableName, channel \\}\\) to your migrations`,
        )
      : new RegExp(
          `the cache's invalidation log \\(table knox_cache_log and its triggers on ${table}\\) is missing, which the 'poll' bus reads: add knoxCacheMigrations\\(\\{ tableName \\}\\) to your migrations`,
        );

  it('refuses to boot without the triggers when installTriggers is false', async () => {
    await expect(
      createTestApp({
        knox: { cache: { installTriggers: false } },
        extras: { tableName: 'knox_cache_untriggered' },
      }),
    ).rejects.toThrow(missing('knox_cache_untriggered'));
  });

  it('refuses to boot when only one trigger is missing (the abilities one on PostgreSQL: an upgrade whose new migration has not run; the token UPDATE one of the log elsewhere)', async () => {
    const installed = await createTestApp({
      knox: { cache: { installTriggers: true } },
      extras: { tableName: 'knox_cache_upgrade' },
    });
    await installed.dataSource.query(
      TEST_DB === 'postgres'
        ? 'DROP TRIGGER knox_cache_abilities ON knox_cache_upgrade'
        : 'DROP TRIGGER knox_cache_knox_cache_upgrade_log_tupd',
    );
    await installed.close();
    await expect(
      createTestApp({
        knox: { cache: { installTriggers: false } },
        extras: { tableName: 'knox_cache_upgrade' },
      }),
    ).rejects.toThrow(missing('knox_cache_upgrade'));
  });

  it('cache off (the default) opens no listening connection and caches nothing', async () => {
    let t: TestApp | undefined;
    try {
      t = await createTestApp();
      await t.createUser('alice');
      const token = await login(t, 'alice');
      expect(cacheOf(t).store).toBeNull();
      expect(await probe(t, token)).toEqual({ status: 200, queries: 1 });
      expect(await probe(t, token)).toEqual({ status: 200, queries: 1 });
    } finally {
      await t?.close();
    }
  });
});
