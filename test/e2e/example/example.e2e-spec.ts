import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import supertest from 'supertest';
import { DataSource } from 'typeorm';
import type { RunningExample } from '../../../example/src/bootstrap.js';
import { sql } from '../../support/test-db.js';
import { exampleDatabase } from './example-db.js';

// The example app, booted as `npm start` boots it with DATABASE_URL set to the run's database
// (postgres://, mysql:// or sqlite:), in a schema, database or file of its own. The example
// reads DATABASE_URL when its modules load (its user entity's column types): set first.
const db = exampleDatabase('knox_example');
process.env.DATABASE_URL = db.url;
const { DEMO_PASSWORD, DEMO_USERNAME, startExample } =
  await import('../../../example/src/bootstrap.js');

function start(): Promise<RunningExample> {
  return startExample({
    port: 0,
    databaseUrl: db.url,
    dataDir: '/nonexistent',
    schema: db.schema,
    banner: false,
  });
}

describe('example app', () => {
  let example: RunningExample;

  beforeAll(async () => {
    await db.create();
    example = await start();
    example.app.useLogger(false);
  });
  afterAll(async () => {
    await example?.stop();
    await db.drop();
  });

  it('seeds the demo user, serves / publicly, and guards /me', async () => {
    const http = supertest(example.url);
    const index = await http.get('/');
    expect(index.status).toBe(200);
    expect(index.body.login).toBe('POST /auth/login');
    const anonymous = await http.get('/me');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.message).toBe(
      'Authentication credentials were not provided.',
    );
  });

  it('logs the demo user in, answers /me, logs out, then refuses the token', async () => {
    const http = supertest(example.url);
    const login = await http
      .post('/auth/login')
      .auth(DEMO_USERNAME, DEMO_PASSWORD);
    expect(login.status).toBe(200);
    expect(login.body.token).toMatch(/^[0-9a-f]{64}$/);
    expect(login.body.user).toEqual({ id: 1, username: DEMO_USERNAME });
    const auth = `Token ${login.body.token}`;

    const me = await http.get('/me').set('Authorization', auth);
    expect(me.status).toBe(200);
    expect(me.body.username).toBe(DEMO_USERNAME);

    const logout = await http.post('/auth/logout').set('Authorization', auth);
    expect(logout.status).toBe(204);

    const after = await http.get('/me').set('Authorization', auth);
    expect(after.status).toBe(401);
    expect(after.body.message).toBe('Invalid token.');
  });

  it('stores a password hash, not the password, and refuses a wrong one like an unknown user', async () => {
    const rows = await example.app
      .get(DataSource)
      .query(
        sql(
          `SELECT password_hash FROM ${db.table('example_user')} WHERE username = $1`,
        ),
        [DEMO_USERNAME],
      );
    expect(rows[0].password_hash).toMatch(/^scrypt\$/);
    expect(rows[0].password_hash).not.toContain(DEMO_PASSWORD);
    const http = supertest(example.url);
    const wrong = await http.post('/auth/login').send({
      username: DEMO_USERNAME,
      password: 'nope',
    });
    const unknown = await http.post('/auth/login').send({
      username: 'nobody',
      password: 'nope',
    });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(unknown.body).toEqual(wrong.body);
  });

  it('keeps a token valid across a restart', async () => {
    const login = await supertest(example.url).post('/auth/login').send({
      username: DEMO_USERNAME,
      password: DEMO_PASSWORD,
      rememberMe: true,
    });
    expect(login.status).toBe(200);
    await example.stop();
    example = await start();
    example.app.useLogger(false);
    const me = await supertest(example.url)
      .get('/me')
      .set('Authorization', `Token ${login.body.token}`);
    expect(me.status).toBe(200);
    expect(me.body.username).toBe(DEMO_USERNAME);
  });

  it('refuses a port in use with what to do, before it opens the data directory', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) =>
      blocker.listen(0, '127.0.0.1', resolve),
    );
    const { port } = blocker.address() as AddressInfo;
    const dataDir = join(tmpdir(), `knox-example-${port}-${Date.now()}`);
    try {
      await expect(
        startExample({ port, dataDir, banner: false }),
      ).rejects.toThrow(
        `Port ${port} is in use (another \`npm start\`?). Stop that process, or pick another port: PORT=${port + 1} npm start`,
      );
      expect(existsSync(dataDir)).toBe(false);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});
