/**
 * Issue 23 item 3: `personalAccessTokens.maxTtl` caps a personal access token. Refresh
 * (`POST /auth/refresh`), auto refresh on use and rotation stop at the first creation +
 * `maxTtl`, and a rotation hands the cap to its successor; a token minted through
 * `createAbility` (no password) never outlives the token that minted it. Expiry read from the
 * row, time moved by the module's clock.
 */
import { describe, expect, it } from '@jest/globals';
import { useTestApp, type TestApp } from '../../support/test-app.js';
import { DAY, HOUR, T0, bearer, rowOf } from '../../support/sessions.js';

const PASSWORD = 'secret-password';
const MAX_TTL = 90 * DAY;
const at = (ms: number) => new Date(T0.getTime() + ms);

async function loginAs(t: TestApp, abilities?: string[]): Promise<string> {
  const res = await t.http
    .post('/auth/login')
    .send({ username: 'alice', password: PASSWORD, abilities });
  expect(res.status).toBe(200);
  return res.body.token;
}

async function createPat(
  t: TestApp,
  caller: string,
  body: Record<string, unknown>,
): Promise<string> {
  const res = await t.http
    .post('/auth/tokens')
    .set('Authorization', bearer(caller))
    .send({ name: 'CI key', abilities: [], ...body });
  expect(res.status).toBe(201);
  return res.body.token;
}

const refresh = (t: TestApp, token: string) =>
  t.http.post('/auth/refresh').set('Authorization', bearer(token));

describe.each(['express', 'fastify'] as const)(
  'personalAccessTokens.maxTtl caps a PAT (%s)',
  (platform) => {
    const t = useTestApp(
      {
        platform,
        knox: {
          loginAbilities: ['*'],
          rotationGracePeriod: 0,
          personalAccessTokens: { maxTtl: MAX_TTL },
        },
      },
      async (app) => ({ alice: await app.createUser('alice', PASSWORD) }),
    );

    it('POST /auth/refresh stops at created + maxTtl, again and again', async () => {
      const pat = await createPat(t, await loginAs(t), {
        password: PASSWORD,
        ttl: 30 * DAY,
      });
      expect((await rowOf(t, pat)).max_expiry).toEqual(at(MAX_TTL));
      t.clock.set(at(20 * DAY));
      expect((await refresh(t, pat)).status).toBe(200);
      expect((await rowOf(t, pat)).expiry).toEqual(at(50 * DAY));
      t.clock.set(at(45 * DAY));
      expect((await refresh(t, pat)).status).toBe(200);
      expect((await rowOf(t, pat)).expiry).toEqual(at(75 * DAY));
      // The leaked-key pattern: one call a day keeps it alive only up to the cap.
      for (let day = 70; day <= 89; day += 1) {
        t.clock.set(at(day * DAY));
        const res = await refresh(t, pat);
        expect(res.status).toBe(200);
        expect((await rowOf(t, pat)).expiry).toEqual(
          at(Math.min((day + 30) * DAY, MAX_TTL)),
        );
      }
      expect((await rowOf(t, pat)).expiry).toEqual(at(MAX_TTL));
      t.clock.set(at(MAX_TTL + 1));
      expect((await refresh(t, pat)).status).toBe(401);
    });

    it('ttl may be exactly maxTtl, not one millisecond more (boundary)', async () => {
      const session = await loginAs(t);
      const over = await t.http
        .post('/auth/tokens')
        .set('Authorization', bearer(session))
        .send({
          name: 'k',
          abilities: [],
          password: PASSWORD,
          ttl: MAX_TTL + 1,
        });
      expect(over.status).toBe(400);
      expect(over.body.message).toBe(
        `\`ttl\` must be a whole number of milliseconds >= 1 (at most ${MAX_TTL}, the longest allowed here).`,
      );
      const pat = await createPat(t, session, {
        password: PASSWORD,
        ttl: MAX_TTL,
      });
      const row = await rowOf(t, pat);
      expect(row.expiry).toEqual(at(MAX_TTL));
      expect(row.max_expiry).toEqual(at(MAX_TTL));
    });

    it('rotation carries the cap to the successor: rotating and refreshing it stop there too', async () => {
      const pat = await createPat(t, await loginAs(t), {
        password: PASSWORD,
        ttl: 30 * DAY,
      });
      let current = pat;
      for (const day of [20, 45, 70, 88]) {
        t.clock.set(at(day * DAY));
        const res = await t.http
          .post('/auth/rotate')
          .set('Authorization', bearer(current));
        expect(res.status).toBe(200);
        current = res.body.token;
        const row = await rowOf(t, current);
        expect(row.max_expiry).toEqual(at(MAX_TTL));
        expect(row.created).toEqual(T0);
        expect(row.expiry).toEqual(at(Math.min((day + 30) * DAY, MAX_TTL)));
      }
      t.clock.set(at(89 * DAY));
      expect((await refresh(t, current)).status).toBe(200);
      expect((await rowOf(t, current)).expiry).toEqual(at(MAX_TTL));
      t.clock.set(at(MAX_TTL + 1));
      expect(
        (
          await t.http
            .post('/auth/rotate')
            .set('Authorization', bearer(current))
        ).status,
      ).toBe(401);
    });
  },
);

describe('maxTtl with auto refresh on use', () => {
  const t = useTestApp(
    {
      knox: {
        loginAbilities: ['*'],
        autoRefresh: true,
        personalAccessTokens: { maxTtl: MAX_TTL },
      },
    },
    async (app) => ({ alice: await app.createUser('alice', PASSWORD) }),
  );

  it('each use refreshes the PAT up to created + maxTtl, never past it', async () => {
    const pat = await createPat(t, await loginAs(t), {
      password: PASSWORD,
      ttl: 30 * DAY,
    });
    for (const day of [25, 50, 75, 89]) {
      t.clock.set(at(day * DAY));
      const res = await t.http.get('/me').set('Authorization', bearer(pat));
      expect(res.status).toBe(200);
      expect((await rowOf(t, pat)).expiry).toEqual(
        at(Math.min((day + 30) * DAY, MAX_TTL)),
      );
    }
    t.clock.set(at(MAX_TTL + 1));
    expect(
      (await t.http.get('/me').set('Authorization', bearer(pat))).status,
    ).toBe(401);
  });
});

describe('createAbility: a minted token never outlives its minter', () => {
  const t = useTestApp(
    {
      knox: {
        tokenTtl: 10 * HOUR,
        loginAbilities: ['*'],
        personalAccessTokens: { createAbility: 'tokens:create', maxTtl: null },
      },
    },
    async (app) => ({ alice: await app.createUser('alice', PASSWORD) }),
  );

  it('without the password: expiry and cap are the minting token’s; with it: as asked', async () => {
    const minter = await loginAs(t, ['tokens:create']);
    const minterRow = await rowOf(t, minter);
    expect(minterRow.expiry).toEqual(at(10 * HOUR));
    t.clock.set(at(HOUR));
    for (const ttl of [30 * DAY, null]) {
      const minted = await createPat(t, minter, { ttl });
      const row = await rowOf(t, minted);
      expect({ expiry: row.expiry, max_expiry: row.max_expiry }).toEqual({
        expiry: at(10 * HOUR),
        max_expiry: at(10 * HOUR),
      });
      // Nor can it mint a longer-lived token or refresh itself past its minter.
      t.clock.set(at(2 * HOUR));
      expect((await refresh(t, minted)).status).toBe(200);
      expect((await rowOf(t, minted)).expiry).toEqual(at(10 * HOUR));
    }
    const withPassword = await createPat(t, minter, {
      ttl: 30 * DAY,
      password: PASSWORD,
    });
    const row = await rowOf(t, withPassword);
    expect(row.expiry).toEqual(at(2 * HOUR + 30 * DAY));
    expect(row.max_expiry).toBeNull();
  });
});
