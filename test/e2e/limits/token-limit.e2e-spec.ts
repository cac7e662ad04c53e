import { beforeAll, describe, expect, it } from '@jest/globals';
import { KnoxTokenService } from '../../../lib/index.js';
import { EMBEDDED_DB, login, useTestApp } from '../../support/test-app.js';
import { HOUR, MESSAGES, expectLimitExceeded } from '../../support/http.js';
import { TEST_DB } from '../../support/test-db.js';

const credentials = { username: 'alice', password: 'secret-password' };

describe('tokenLimitPerUser: 10', () => {
  const t = useTestApp({ knox: { tokenLimitPerUser: 10 } }, async (app) => ({
    alice: await app.createUser('alice'),
  }));
  let service: KnoxTokenService;
  beforeAll(() => {
    service = t.app.get(KnoxTokenService);
  });

  it('5 expiring + 5 never-expiring tokens: the next login is 403 and makes no token', async () => {
    for (let i = 0; i < 5; i += 1) {
      await login(t, 'alice');
      await service.create(t.seeded.alice, { ttl: null });
    }
    const res = await t.http.post('/auth/login').send(credentials);
    expectLimitExceeded(res);
    expect(await t.tokenRows()).toHaveLength(10);
  });

  it('never-expiring tokens count toward the limit', async () => {
    for (let i = 0; i < 10; i += 1) {
      await service.create(t.seeded.alice, { ttl: null });
    }
    expectLimitExceeded(await t.http.post('/auth/login').send(credentials));
    expect(await t.tokenRows()).toHaveLength(10);
  });

  it('9 live + 1 expired: the first login is 200, the second 403', async () => {
    await service.create(t.seeded.alice, { ttl: HOUR });
    t.clock.advance(HOUR);
    for (let i = 0; i < 9; i += 1) {
      await login(t, 'alice');
    }
    t.clock.advance(1);
    const first = await t.http.post('/auth/login').send(credentials);
    expect(first.status).toBe(200);
    const second = await t.http.post('/auth/login').send(credentials);
    expectLimitExceeded(second);
    expect(second.body.message).toBe(MESSAGES.LIMIT_EXCEEDED);
  });

  it("one user's limit does not touch another's", async () => {
    for (let i = 0; i < 10; i += 1) {
      await service.create(t.seeded.alice, { ttl: null });
    }
    await t.createUser('bob');
    await login(t, 'bob');
    expect(await t.tokenRows()).toHaveLength(11);
  });

  it('a logout frees a place', async () => {
    const tokens: string[] = [];
    for (let i = 0; i < 10; i += 1) {
      tokens.push(await login(t, 'alice'));
    }
    expectLimitExceeded(await t.http.post('/auth/login').send(credentials));
    await t.http
      .post('/auth/logout')
      .set('Authorization', `Token ${tokens[3]}`);
    expect((await t.http.post('/auth/login').send(credentials)).status).toBe(
      200,
    );
  });
});

describe('tokenLimitPerUser under concurrency', () => {
  const t = useTestApp({ knox: { tokenLimitPerUser: 3 } }, (app) =>
    app.createUser('alice'),
  );

  it('20 parallel logins with a limit of 3: exactly 3 tokens, 3 answers 200 and 17 answers 403', async () => {
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        t.http.post('/auth/login').send(credentials),
      ),
    );
    const statuses = answers.map((res) => res.status).sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(3);
    expect(statuses.filter((s) => s === 403)).toHaveLength(17);
    for (const res of answers.filter((r) => r.status === 403)) {
      expectLimitExceeded(res);
    }
    const rows = await t.tokenRows();
    expect(rows).toHaveLength(3);
    expect(rows.map((r) => r.token_key).sort()).toEqual(
      answers
        .filter((r) => r.status === 200)
        .map((r) => (r.body.token as string).slice(0, 15))
        .sort(),
    );
  });

  it('20 parallel logins with 2 never-expiring tokens already there: exactly 1 more', async () => {
    const service = t.app.get(KnoxTokenService);
    const alice = await t.dataSource
      .getRepository('TestUser')
      .findOneByOrFail({ username: 'alice' });
    await service.create(alice, { ttl: null });
    await service.create(alice, { ttl: null });
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        t.http.post('/auth/login').send(credentials),
      ),
    );
    expect(answers.filter((r) => r.status === 200)).toHaveLength(1);
    expect(answers.filter((r) => r.status === 403)).toHaveLength(19);
    expect(await t.tokenRows()).toHaveLength(3);
  });
});

// A server setting given at connection start, and a race between sessions: PGlite (one
// session, transactions one after another, no startup options) has neither. Real server only.
// PostgreSQL's own setting (SQLite's transactions are serializable; MariaDB's is another test).
(EMBEDDED_DB || TEST_DB !== 'postgres' ? describe.skip : describe)(
  'tokenLimitPerUser on a PostgreSQL database whose default isolation is REPEATABLE READ',
  () => {
    const t = useTestApp(
      {
        knox: { tokenLimitPerUser: 3 },
        dataSourceExtra: {
          options: '-c default_transaction_isolation=repeatable\\ read',
        },
      },
      (app) => app.createUser('alice'),
    );

    it('20 parallel logins with a limit of 3 still leave exactly 3 tokens, and no 503', async () => {
      const [{ level }] = await t.dataSource.query(
        `SELECT current_setting('default_transaction_isolation') AS level`,
      );
      expect(level).toBe('repeatable read');
      const answers = await Promise.all(
        Array.from({ length: 20 }, () =>
          t.http.post('/auth/login').send(credentials),
        ),
      );
      const statuses = answers.map((res) => res.status);
      expect(statuses.filter((s) => s === 200)).toHaveLength(3);
      expect(statuses.filter((s) => s === 403)).toHaveLength(17);
      expect(await t.tokenRows()).toHaveLength(3);
    });
  },
);
