/**
 * Issue 21: the write guarantees with two app instances on one database: on SQLite, two
 * processes' worth of connections on one file (the harness gives every app of a test file the
 * same temp file), serialised by BEGIN IMMEDIATE across them and by the library's queue within
 * each; on a server, two pools. Requests alternate between the instances.
 */
import {
  afterAll,
  beforeAll,
  beforeEach,
  describe,
  expect,
  it,
} from '@jest/globals';
import {
  EMBEDDED_DB,
  createTestApp,
  login,
  type TestApp,
} from '../../support/test-app.js';
import { bearer } from '../../support/sessions.js';
import { expectLimitExceeded } from '../../support/http.js';

const TRIALS = 10;
const credentials = { username: 'alice', password: 'secret-password' };

const post = (t: TestApp, path: string, token: string) =>
  t.http.post(path).set('Authorization', bearer(token));
const me = async (t: TestApp, token: string) =>
  (await t.http.get('/me').set('Authorization', bearer(token))).status;

// Races need concurrent sessions: PGlite is one session.
(EMBEDDED_DB ? describe.skip : describe)(
  'two instances on one database',
  () => {
    let a: TestApp;
    let b: TestApp;
    beforeAll(async () => {
      a = await createTestApp({
        knox: { tokenLimitPerUser: 3, rotationGracePeriod: 30_000 },
      });
      b = await createTestApp({
        knox: { tokenLimitPerUser: 3, rotationGracePeriod: 30_000 },
        keepData: true,
      });
    });
    afterAll(async () => {
      await b?.close();
      await a?.close();
    });
    beforeEach(async () => {
      await a.reset();
      await a.createUser('alice');
    });
    const either = (i: number) => (i % 2 ? b : a);

    it(`20 parallel logins at tokenLimitPerUser 3: exactly 3 tokens, 17 answers 403 (${TRIALS} trials)`, async () => {
      for (let trial = 0; trial < TRIALS; trial++) {
        await a.dataSource.query('DELETE FROM knox_authtoken');
        const answers = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            either(i).http.post('/auth/login').send(credentials),
          ),
        );
        expect(answers.map((r) => r.status).sort()).toEqual([
          ...Array(3).fill(200),
          ...Array(17).fill(403),
        ]);
        for (const res of answers.filter((r) => r.status === 403)) {
          expectLimitExceeded(res);
        }
        expect(await a.tokenRows()).toHaveLength(3);
      }
    });

    it(`logoutall on one instance racing rotate on the other leaves no token (${TRIALS} trials)`, async () => {
      for (let trial = 0; trial < TRIALS; trial++) {
        await a.dataSource.query('DELETE FROM knox_authtoken');
        const owner = await login(a, 'alice');
        const stolen = await login(b, 'alice');
        const [all, rotate] = await Promise.all([
          post(a, '/auth/logoutall', owner),
          post(b, '/auth/rotate', stolen),
        ]);
        expect(all.status).toBe(204);
        expect([200, 401]).toContain(rotate.status);
        expect(await a.tokenRows()).toEqual([]);
        if (rotate.status === 200) {
          expect(await me(a, rotate.body.token)).toBe(401);
          expect(await me(b, rotate.body.token)).toBe(401);
        }
      }
    });

    it(`logoutothers racing rotate keeps only the caller (${TRIALS} trials)`, async () => {
      for (let trial = 0; trial < TRIALS; trial++) {
        await a.dataSource.query('DELETE FROM knox_authtoken');
        const owner = await login(a, 'alice');
        const stolen = await login(b, 'alice');
        const [others, rotate] = await Promise.all([
          post(b, '/auth/logoutothers', owner),
          post(a, '/auth/rotate', stolen),
        ]);
        expect(others.status).toBe(204);
        expect([200, 401]).toContain(rotate.status);
        expect(await a.tokenRows()).toHaveLength(1);
        expect(await me(a, owner)).toBe(200);
        if (rotate.status === 200) {
          expect(await me(b, rotate.body.token)).toBe(401);
        }
      }
    });

    it(`10 parallel rotates of one token over both instances: one successor (${TRIALS} trials)`, async () => {
      for (let trial = 0; trial < TRIALS; trial++) {
        await a.dataSource.query('DELETE FROM knox_authtoken');
        const token = await login(a, 'alice');
        const answers = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            post(either(i), '/auth/rotate', token),
          ),
        );
        const won = answers.filter((r) => r.status === 200);
        expect(won).toHaveLength(1);
        expect(answers.filter((r) => r.status === 401)).toHaveLength(9);
        const rows = await a.tokenRows();
        expect(rows.filter((r) => r.retired_at === null)).toHaveLength(1);
        expect(rows).toHaveLength(2);
        // The retired token still reads, on both, and may not rotate again.
        expect(await me(b, token)).toBe(200);
        expect((await post(b, '/auth/rotate', token)).status).toBe(401);
        expect(await me(a, won[0].body.token)).toBe(200);
      }
    });

    it('no answer of the races is a 500 or a 503', async () => {
      const token = await login(a, 'alice');
      const answers = await Promise.all([
        ...Array.from({ length: 10 }, (_, i) =>
          either(i).http.post('/auth/login').send(credentials),
        ),
        ...Array.from({ length: 10 }, (_, i) =>
          either(i).http.get('/me').set('Authorization', bearer(token)),
        ),
        post(b, '/auth/logoutall', token),
      ]);
      expect(answers.filter((r) => r.status >= 500)).toEqual([]);
    });
  },
);
