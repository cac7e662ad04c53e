import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { knoxTokenEntity } from '../../../lib/index.js';
import { TestUser } from '../../support/fixtures.js';
import { digestOf, rowOf } from '../../support/sessions.js';
import { login, useTestApp } from '../../support/test-app.js';
import {
  describeOn,
  sql,
  testConnectionOptions,
} from '../../support/test-db.js';

/*
 * Times are stored so that another client reads and writes them as the library does: UTC
 * (`timestamptz` on PostgreSQL, `datetime(3)` with `timezone: 'Z'` on MySQL/MariaDB, TypeORM's
 * UTC text on SQLite). A DBA's `UPDATE … SET expiry = '<UTC time>'` expires a token exactly then.
 */
describe("a DBA's expiry written as plain SQL text", () => {
  const t = useTestApp({}, async (app) => ({
    alice: await app.createUser('alice'),
  }));

  it('expires the token at that UTC time, not an offset later or earlier', async () => {
    // The clock is 2030-01-01T00:00:00Z.
    const expired = await login(t, 'alice');
    const live = await login(t, 'alice');
    // Each row found by its token's digest: both were created at the same instant, so the
    // table's order by `created` is no order (MariaDB returned them either way round).
    const update = sql(
      'UPDATE knox_authtoken SET expiry = $1 WHERE "digest" = $2',
    );
    await t.dataSource.query(update, [
      '2029-12-31 23:59:00',
      digestOf(expired),
    ]);
    await t.dataSource.query(update, ['2030-01-01 00:01:00', digestOf(live)]);
    expect((await rowOf(t, expired)).expiry).toEqual(
      new Date('2029-12-31T23:59:00Z'),
    );
    const me = (token: string) =>
      t.http.get('/me').set('Authorization', `Token ${token}`);
    expect((await me(expired)).status).toBe(401);
    expect((await me(live)).status).toBe(200);
    t.clock.advance(61_000);
    expect((await me(live)).status).toBe(401);
    // Both expired rows were deleted when presented.
    expect(await t.tokenRows()).toEqual([]);
  });

  it("expires a token set to the year 2000 (the issue's DBA statement)", async () => {
    const token = await login(t, 'alice');
    await t.dataSource.query(
      sql(
        "UPDATE knox_authtoken SET expiry = '2000-01-01 00:00:00' WHERE user_id = $1",
      ),
      [t.seeded.alice.id],
    );
    const res = await t.http.get('/me').set('Authorization', `Token ${token}`);
    expect(res.status).toBe(401);
  });
});

describeOn(
  ['mariadb'],
  "MySQL's datetime and the data source's time zone",
  () => {
    afterEach(() => {
      jest.restoreAllMocks();
    });

    async function warningsWith(
      timezone: string | undefined,
    ): Promise<string[]> {
      const warn = jest
        .spyOn(Logger.prototype, 'warn')
        .mockImplementation(() => undefined);
      const dataSource = new DataSource({
        ...(testConnectionOptions() as { type: 'mariadb' }),
        timezone,
        entities: [TestUser, knoxTokenEntity(TestUser)],
      });
      await dataSource.initialize();
      await dataSource.destroy();
      return warn.mock.calls.map((call) => String(call[0]));
    }

    // Jest gives tests a copy of process.env, so a test cannot move the process's own zone: the
    // offsets are given as the option, which mysql2 applies the same way.
    it('warns once when times would be stored at an offset from UTC', async () => {
      const warnings = (await warningsWith('+02:00')).filter((w) =>
        w.includes("timezone: 'Z'"),
      );
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain('stores times in UTC+02:00, not UTC');
    });

    it("says nothing with timezone: 'Z' or '+00:00'", async () => {
      expect(await warningsWith('Z')).toEqual([]);
      expect(await warningsWith('+00:00')).toEqual([]);
    });
  },
);
