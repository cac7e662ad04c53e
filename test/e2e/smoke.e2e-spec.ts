import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestApp, login, type TestApp } from '../support/test-app.js';

describe('smoke', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
    await t.createUser('alice');
  });
  afterAll(() => t.close());

  it('logs in, authenticates, logs out', async () => {
    const token = await login(t, 'alice');
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    const me = await t.http.get('/me').set('Authorization', `Token ${token}`);
    expect(me.status).toBe(200);
    expect(me.body.username).toBe('alice');
    const out = await t.http
      .post('/auth/logout')
      .set('Authorization', `Token ${token}`);
    expect(out.status).toBe(204);
    const again = await t.http
      .get('/me')
      .set('Authorization', `Token ${token}`);
    expect(again.status).toBe(401);
    expect(again.headers['www-authenticate']).toBe('Token');
  });
});
