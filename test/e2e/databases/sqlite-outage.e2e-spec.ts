/**
 * Issue 21, SQLite: the database unavailable (another connection holds the file's exclusive lock
 * past the busy timeout) is a 503 on every path, never a 401 or a 500, and the next request once
 * the lock is gone is served, without a restart.
 */
import { afterEach, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { login, useTestApp } from '../../support/test-app.js';
import { bearer } from '../../support/sessions.js';
import { MESSAGES } from '../../support/http.js';
import { describeOn } from '../../support/test-db.js';

interface Connection {
  exec(sql: string): void;
  close(): void;
}
const Sqlite = createRequire(import.meta.url)('better-sqlite3') as new (
  file: string,
  options?: { timeout?: number },
) => Connection;

describeOn(['sqlite'], 'a locked SQLite file', () => {
  const t = useTestApp({}, (app) => app.createUser('alice'));
  let other: Connection | undefined;
  afterEach(() => {
    other?.close();
    other = undefined;
  });

  /** Another process's connection that takes the file's exclusive lock. */
  async function lockFile(): Promise<Connection> {
    // A short busy timeout on the app's connection, so that the test waits 0.3 s, not 5.
    await t.dataSource.query('PRAGMA busy_timeout = 300');
    const file = (t.dataSource.options as { database: string }).database;
    other = new Sqlite(file, { timeout: 0 });
    other.exec('BEGIN EXCLUSIVE');
    return other;
  }

  it('503 for the request path, login, rotate and logout while locked; 200 once it is released', async () => {
    const token = await login(t, 'alice');
    const lock = await lockFile();
    const started = Date.now();
    const answers = await Promise.all([
      t.http.get('/me').set('Authorization', bearer(token)),
      t.http
        .post('/auth/login')
        .send({ username: 'alice', password: 'secret-password' }),
      t.http.post('/auth/rotate').set('Authorization', bearer(token)),
      t.http.post('/auth/logoutall').set('Authorization', bearer(token)),
    ]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
    for (const res of answers) {
      expect({ status: res.status, message: res.body.message }).toEqual({
        status: 503,
        message: MESSAGES.UNAVAILABLE,
      });
    }
    lock.exec('ROLLBACK');
    expect(
      (await t.http.get('/me').set('Authorization', bearer(token))).status,
    ).toBe(200);
    expect(
      (
        await t.http
          .post('/auth/login')
          .send({ username: 'alice', password: 'secret-password' })
      ).status,
    ).toBe(200);
    expect(await t.tokenRows()).toHaveLength(2);
  });

  it('a lock another process releases within the busy timeout only delays the request', async () => {
    const token = await login(t, 'alice');
    await t.dataSource.query('PRAGMA busy_timeout = 2000');
    const file = (t.dataSource.options as { database: string }).database;
    // Another process: the app's connection waits for the lock inside SQLite's busy handler.
    const child = spawn(
      process.execPath,
      [
        '-e',
        `const db = new (require('better-sqlite3'))(process.argv[1]);
         db.exec('BEGIN EXCLUSIVE'); console.log('locked');
         setTimeout(() => { db.exec('ROLLBACK'); db.close(); }, 200);`,
        file,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = once(child, 'exit');
    await once(child.stdout!, 'data');
    const started = Date.now();
    const [me, rotated] = await Promise.all([
      t.http.get('/me').set('Authorization', bearer(token)),
      t.http.post('/auth/rotate').set('Authorization', bearer(token)),
    ]);
    expect([me.status, rotated.status]).toEqual([200, 200]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    await exited;
  });
});
