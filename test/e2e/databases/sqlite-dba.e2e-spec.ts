/**
 * Issue 21, SQLite: the column names and TypeORM's datetime text carry over, so a DBA's UPDATE
 * through the `sqlite3` CLI on the app's file expires a token (refused, its row deleted).
 */
import { expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { login, useTestApp } from '../../support/test-app.js';
import { bearer, digestOf } from '../../support/sessions.js';
import { describeOn } from '../../support/test-db.js';

describeOn(['sqlite'], 'a DBA on the SQLite file', () => {
  const t = useTestApp({}, (app) => app.createUser('alice'));

  it("UPDATE knox_authtoken SET expiry = '2000-01-01 00:00:00' through the sqlite3 CLI expires the token", async () => {
    const token = await login(t, 'alice');
    const other = await login(t, 'alice');
    const file = (t.dataSource.options as { database: string }).database;
    const [row] = await t.dataSource.query(
      'SELECT expiry FROM knox_authtoken WHERE digest = ?',
      [digestOf(token)],
    );
    // TypeORM's own datetime text: UTC, 'YYYY-MM-DD HH:MM:SS.SSS'.
    expect(row.expiry).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$/);
    execFileSync('sqlite3', [
      '-cmd',
      '.timeout 5000',
      file,
      `UPDATE knox_authtoken SET expiry = '2000-01-01 00:00:00' WHERE digest = '${digestOf(token)}'`,
    ]);
    const res = await t.http.get('/me').set('Authorization', bearer(token));
    expect(res.status).toBe(401);
    expect(
      await t.dataSource.query(
        'SELECT digest FROM knox_authtoken WHERE digest = ?',
        [digestOf(token)],
      ),
    ).toEqual([]);
    expect(
      (await t.http.get('/me').set('Authorization', bearer(other))).status,
    ).toBe(200);
  });
});
