/**
 * Issue 8: revocation is all or nothing. Everything that creates or revokes a user's tokens is
 * applied one at a time per user, so that logoutall / logoutothers racing a rotation never leave
 * a live token behind, and a token retired by a rotation may only finish reads and log out.
 *
 * The races need concurrent PostgreSQL sessions: real server only (PGlite is one session).
 */
import { describe, expect, it } from '@jest/globals';
import { KnoxTokenService, type KnoxToken } from '../../lib/index.js';
import {
  EMBEDDED_DB,
  login,
  useTestApp,
  type SharedTestApp,
} from '../support/test-app.js';
import { SECOND, bearer, rowOf } from '../support/sessions.js';

const TRIALS = 20;
const onServer = EMBEDDED_DB ? describe.skip : describe;

type Seeded = { aliceId: number };
const seedAlice = async (app: {
  createUser(name: string): Promise<{ id: number }>;
}) => ({
  aliceId: (await app.createUser('alice')).id,
});

const post = (t: SharedTestApp<Seeded>, path: string, token: string) =>
  t.http.post(path).set('Authorization', bearer(token));
const me = async (t: SharedTestApp<Seeded>, token: string) =>
  (await t.http.get('/me').set('Authorization', bearer(token))).status;

/** Fires both requests at once and waits for both. */
async function race(first: PromiseLike<any>, second: PromiseLike<any>) {
  return Promise.all([Promise.resolve(first), Promise.resolve(second)]);
}

describe.each([0, 30 * SECOND])(
  'revocation racing rotation (grace %d ms)',
  (grace) => {
    onServer('over HTTP', () => {
      const t = useTestApp({ knox: { rotationGracePeriod: grace } }, seedAlice);

      it(`logoutall answered 204 leaves no live token, in ${TRIALS} of ${TRIALS} trials`, async () => {
        for (let trial = 0; trial < TRIALS; trial += 1) {
          await t.reset();
          await t.createUser('alice');
          const owner = await login(t, 'alice');
          const stolen = await login(t, 'alice');
          const [logoutAll, rotate] = await race(
            post(t, '/auth/logoutall', owner),
            post(t, '/auth/rotate', stolen),
          );
          expect(logoutAll.status).toBe(204);
          expect([200, 401]).toContain(rotate.status);
          expect(await t.tokenRows()).toEqual([]);
          if (rotate.status === 200) {
            expect(await me(t, rotate.body.token)).toBe(401);
          }
          expect(await me(t, stolen)).toBe(401);
          expect(await me(t, owner)).toBe(401);
        }
      });

      it(`logoutothers leaves the caller alone, in ${TRIALS} of ${TRIALS} trials`, async () => {
        for (let trial = 0; trial < TRIALS; trial += 1) {
          await t.reset();
          await t.createUser('alice');
          const owner = await login(t, 'alice');
          const stolen = await login(t, 'alice');
          const [others, rotate] = await race(
            post(t, '/auth/logoutothers', owner),
            post(t, '/auth/rotate', stolen),
          );
          expect(others.status).toBe(204);
          expect([200, 401]).toContain(rotate.status);
          const rows = await t.tokenRows();
          expect(rows.map((r) => r.id)).toEqual([(await rowOf(t, owner)).id]);
          if (rotate.status === 200) {
            expect(await me(t, rotate.body.token)).toBe(401);
          }
          expect(await me(t, owner)).toBe(200);
        }
      });

      it('parallel rotations of one token: exactly one succeeds, one successor', async () => {
        for (let trial = 0; trial < TRIALS; trial += 1) {
          await t.reset();
          await t.createUser('alice');
          const token = await login(t, 'alice');
          const answers = await Promise.all(
            Array.from({ length: 10 }, () => post(t, '/auth/rotate', token)),
          );
          const won = answers.filter((a) => a.status === 200);
          expect(won).toHaveLength(1);
          expect(answers.filter((a) => a.status === 401)).toHaveLength(9);
          for (const lost of answers.filter((a) => a.status === 401)) {
            expect(lost.body.message).toBe('Invalid token.');
          }
          const live = (await t.tokenRows()).filter(
            (r) => r.retired_at === null,
          );
          expect(live).toHaveLength(1);
          expect(await me(t, won[0].body.token)).toBe(200);
          expect(await t.tokenRows()).toHaveLength(grace > 0 ? 2 : 1);
        }
      });
    });

    onServer('through KnoxTokenService', () => {
      const t = useTestApp({ knox: { rotationGracePeriod: grace } }, seedAlice);

      it(`revokeAll racing rotate leaves no token, in ${TRIALS} of ${TRIALS} trials`, async () => {
        const knox = t.app.get(KnoxTokenService);
        for (let trial = 0; trial < TRIALS; trial += 1) {
          await t.reset();
          const alice = await t.createUser('alice');
          await knox.create(alice);
          const { record } = await knox.create(alice);
          const [revoked, rotated] = await Promise.allSettled([
            knox.revokeAll(alice.id),
            knox.rotate(record),
          ]);
          expect(revoked.status).toBe('fulfilled');
          if (rotated.status === 'rejected') {
            expect(rotated.reason).toMatchObject({ status: 401 });
          }
          expect(await t.tokenRows()).toEqual([]);
        }
      });

      it('parallel rotate() of one record: exactly one resolves', async () => {
        const knox = t.app.get(KnoxTokenService);
        for (let trial = 0; trial < TRIALS; trial += 1) {
          await t.reset();
          const alice = await t.createUser('alice');
          const { record } = await knox.create(alice);
          // Separate copies, as separate requests would hold.
          const copies = Array.from(
            { length: 5 },
            () =>
              Object.assign(
                Object.create(Object.getPrototypeOf(record)),
                record,
              ) as KnoxToken,
          );
          const results = await Promise.allSettled(
            copies.map((copy) => knox.rotate(copy)),
          );
          expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(
            1,
          );
          for (const result of results.filter((r) => r.status === 'rejected')) {
            expect((result as PromiseRejectedResult).reason).toMatchObject({
              status: 401,
            });
          }
        }
      });
    });
  },
);

describe('a token retired by a rotation (grace 30 s) is for finishing reads only', () => {
  const t = useTestApp(
    { knox: { rotationGracePeriod: 30 * SECOND } },
    seedAlice,
  );

  async function rotated() {
    const old = await login(t, 'alice');
    const res = await post(t, '/auth/rotate', old);
    expect(res.status).toBe(200);
    return { old, fresh: res.body.token as string };
  }

  it('still passes KnoxGuard on app routes, and may list sessions', async () => {
    const { old } = await rotated();
    expect(await me(t, old)).toBe(200);
    const list = await t.http
      .get('/auth/tokens')
      .set('Authorization', bearer(old));
    expect(list.status).toBe(200);
    expect(list.body).toHaveLength(2);
  });

  it.each([
    '/auth/rotate',
    '/auth/refresh',
    '/auth/logoutall',
    '/auth/logoutothers',
  ])(
    'POST %s with it: 401 Invalid token., and the successor keeps working',
    async (path) => {
      const { old, fresh } = await rotated();
      const rowsBefore = await t.tokenRows();
      for (let i = 0; i < 3; i += 1) {
        const res = await post(t, path, old);
        expect(res.status).toBe(401);
        expect(res.body.message).toBe('Invalid token.');
        expect(res.headers['www-authenticate']).toBe('Token');
      }
      expect(await me(t, fresh)).toBe(200);
      expect(await t.tokenRows()).toEqual(rowsBefore);
    },
  );

  it('DELETE /auth/tokens/:id of the successor with it: 401, the successor keeps working', async () => {
    const { old, fresh } = await rotated();
    const res = await t.http
      .delete(`/auth/tokens/${(await rowOf(t, fresh)).id}`)
      .set('Authorization', bearer(old));
    expect(res.status).toBe(401);
    expect(res.body.message).toBe('Invalid token.');
    expect(await me(t, fresh)).toBe(200);
  });

  it('may log itself out', async () => {
    const { old, fresh } = await rotated();
    expect((await post(t, '/auth/logout', old)).status).toBe(204);
    expect(await me(t, old)).toBe(401);
    expect(await me(t, fresh)).toBe(200);
  });

  it('request.auth.retiredAt tells the app', async () => {
    const { old } = await rotated();
    const knox = t.app.get(KnoxTokenService);
    const { token } = await knox.authenticate(old);
    expect(token.retiredAt).toBeInstanceOf(Date);
  });

  it('KnoxTokenService refuses it: rotate, refresh, revokeAll({ except }), revokeById({ actor })', async () => {
    const { old, fresh } = await rotated();
    const knox = t.app.get(KnoxTokenService);
    const { token: retired } = await knox.authenticate(old);
    const freshId = (await rowOf(t, fresh)).id;
    await expect(knox.rotate(retired)).rejects.toMatchObject({ status: 401 });
    await expect(knox.refresh(retired)).rejects.toMatchObject({ status: 401 });
    await expect(
      knox.revokeAll(t.seeded.aliceId, { except: retired.id }),
    ).rejects.toMatchObject({ status: 401 });
    await expect(
      knox.revokeById(t.seeded.aliceId, freshId, { actor: retired }),
    ).rejects.toMatchObject({ status: 401 });
    expect(await me(t, fresh)).toBe(200);
    expect(await t.tokenRows()).toHaveLength(2);
  });

  it('a record read before the rotation is refused too (checked under the lock)', async () => {
    const old = await login(t, 'alice');
    const knox = t.app.get(KnoxTokenService);
    const { token: stale } = await knox.authenticate(old);
    expect((await post(t, '/auth/rotate', old)).status).toBe(200);
    expect(stale.retiredAt).toBeNull();
    await expect(knox.rotate(stale)).rejects.toMatchObject({ status: 401 });
    await expect(knox.refresh(stale)).rejects.toMatchObject({ status: 401 });
    await expect(
      knox.revokeAll(t.seeded.aliceId, { actor: stale }),
    ).rejects.toMatchObject({ status: 401 });
    expect(await t.tokenRows()).toHaveLength(2);
  });
});

describe('a rotation never takes a user past tokenLimitPerUser', () => {
  const t = useTestApp(
    {
      knox: {
        rotationGracePeriod: 30 * SECOND,
        tokenLimitPerUser: 3,
        tokenLimitPolicy: 'reject',
      },
    },
    seedAlice,
  );

  it('at the limit, the rotated token is revoked at once instead of kept for its grace period', async () => {
    const tokens = [
      await login(t, 'alice'),
      await login(t, 'alice'),
      await login(t, 'alice'),
    ];
    const res = await post(t, '/auth/rotate', tokens[0]);
    expect(res.status).toBe(200);
    expect(await t.tokenRows()).toHaveLength(3);
    expect(await me(t, tokens[0])).toBe(401);
    expect(await me(t, res.body.token)).toBe(200);
  });

  it('below the limit, the grace period holds', async () => {
    const first = await login(t, 'alice');
    const res = await post(t, '/auth/rotate', first);
    expect(res.status).toBe(200);
    expect(await t.tokenRows()).toHaveLength(2);
    expect(await me(t, first)).toBe(200);
  });

  it('a retired token rotating again and again never adds a token', async () => {
    const first = await login(t, 'alice');
    const fresh = (await post(t, '/auth/rotate', first)).body.token as string;
    for (let i = 0; i < 5; i += 1) {
      expect((await post(t, '/auth/rotate', first)).status).toBe(401);
    }
    expect(await t.tokenRows()).toHaveLength(2);
    expect(await me(t, fresh)).toBe(200);
  });

  onServer('under concurrency', () => {
    it(`parallel rotations of every token never exceed the limit (${TRIALS} trials)`, async () => {
      for (let trial = 0; trial < TRIALS; trial += 1) {
        await t.reset();
        await t.createUser('alice');
        const tokens = [
          await login(t, 'alice'),
          await login(t, 'alice'),
          await login(t, 'alice'),
        ];
        await Promise.all(
          [...tokens, ...tokens].map((token) => post(t, '/auth/rotate', token)),
        );
        const now = t.clock.now();
        const live = (await t.tokenRows()).filter(
          (r) => !r.expiry || r.expiry >= now,
        );
        expect(live.length).toBeLessThanOrEqual(3);
      }
    });
  });
});
