/**
 * Planted-bug pass of issue 23: with DELETE counted as a safe method (CSRF skipped for it),
 * every cookie test still passed — they sent POSTs only. Every unsafe method authenticated by
 * the cookie needs the Origin check: from a foreign origin, PUT, PATCH and DELETE are refused
 * with 403 and change nothing; the library's own DELETE and PATCH routes included.
 */
import { describe, expect, it } from '@jest/globals';
import { Controller, Delete, Patch, Put, UseGuards } from '@nestjs/common';
import { KnoxGuard, KnoxMessages } from '../../../lib/index.js';
import { PLATFORMS } from '../../support/platforms.js';
import { useTestApp, type TestApp } from '../../support/test-app.js';

const HOST = 'api.example.com';
const SAME = `http://${HOST}`;
const EVIL = 'https://evil.example';

@Controller('things')
@UseGuards(KnoxGuard)
class ThingsController {
  @Put()
  put() {
    return { did: 'put' };
  }
  @Patch()
  patch() {
    return { did: 'patch' };
  }
  @Delete()
  remove() {
    return { did: 'delete' };
  }
}

async function cookieLogin(t: TestApp): Promise<string> {
  const res = await t.http
    .post('/auth/login')
    .set('Host', HOST)
    .set('Origin', SAME)
    .send({ username: 'alice', password: 'secret-password', name: 'web' });
  expect(res.status).toBe(200);
  return (res.headers['set-cookie'] as unknown as string[])[0].split('; ')[0];
}

describe.each(PLATFORMS)('CSRF on every unsafe method (%s)', (platform) => {
  const t = useTestApp(
    { platform, knox: { cookie: true }, controllers: [ThingsController] },
    async (app) => ({ alice: await app.createUser('alice') }),
  );

  const send = (
    method: 'put' | 'patch' | 'delete',
    path: string,
    pair: string,
    origin?: string,
  ) => {
    const request = t.http[method](path).set('Host', HOST).set('Cookie', pair);
    return origin ? request.set('Origin', origin) : request;
  };

  it('PUT, PATCH and DELETE with the cookie from another origin (or none) are 403', async () => {
    const pair = await cookieLogin(t);
    for (const method of ['put', 'patch', 'delete'] as const) {
      const evil = await send(method, '/things', pair, EVIL);
      expect({
        method,
        status: evil.status,
        message: evil.body.message,
      }).toEqual({
        method,
        status: 403,
        message: KnoxMessages.CSRF_UNTRUSTED_ORIGIN,
      });
      const bare = await send(method, '/things', pair);
      expect({ method, status: bare.status }).toEqual({ method, status: 403 });
      const same = await send(method, '/things', pair, SAME);
      expect({ method, status: same.status }).toEqual({ method, status: 200 });
    }
  });

  it("the library's DELETE and PATCH /auth/tokens/:id from another origin change nothing", async () => {
    const pair = await cookieLogin(t);
    const [row] = await t.tokenRows();
    const removed = await send('delete', `/auth/tokens/${row.id}`, pair, EVIL);
    expect(removed.status).toBe(403);
    const renamed = await send(
      'patch',
      `/auth/tokens/${row.id}`,
      pair,
      EVIL,
    ).send({
      name: 'pwned',
    });
    expect(renamed.status).toBe(403);
    expect(await t.tokenRows()).toEqual([row]);
  });
});
