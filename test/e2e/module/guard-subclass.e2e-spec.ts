import { beforeEach, describe, expect, it } from '@jest/globals';
import {
  Controller,
  Get,
  HttpCode,
  Injectable,
  Post,
  UseGuards,
} from '@nestjs/common';
import { KnoxGuard, KnoxUser, type KnoxRequest } from '../../../lib/index.js';
import type { TestUser } from '../../support/fixtures.js';
import { PLATFORMS } from '../../support/platforms.js';
import { login, useTestApp } from '../../support/test-app.js';
import { MESSAGES, expectUnauthorized } from '../../support/http.js';

/** Reads the token from `X-Api-Token` only (say, for machine clients). */
@Injectable()
class ApiTokenGuard extends KnoxGuard {
  protected override extractToken(request: KnoxRequest): string | null {
    const header = request.headers['x-api-token'];
    return typeof header === 'string' ? header : null;
  }
}

/** Reads the token from a JSON body field (as some RPC clients send it). */
@Injectable()
class BodyTokenGuard extends KnoxGuard {
  protected override extractToken(request: KnoxRequest): string | null {
    const body = request.body as { token?: string } | undefined;
    return body?.token ?? null;
  }
}

@Controller('sub')
class SubclassController {
  @UseGuards(ApiTokenGuard)
  @Get('api')
  api(@KnoxUser() user: TestUser) {
    return { username: user.username };
  }

  @UseGuards(BodyTokenGuard)
  @Post('rpc')
  @HttpCode(200)
  rpc(@KnoxUser() user: TestUser) {
    return { username: user.username };
  }
}

describe.each(PLATFORMS)(
  'KnoxGuard subclasses behind KnoxGuard as APP_GUARD (%s)',
  (platform) => {
    const t = useTestApp(
      { platform, globalGuard: true, controllers: [SubclassController] },
      async (app) => {
        await app.createUser('alice');
        await app.createUser('bob');
        return {
          alice: await login(app, 'alice'),
          bob: await login(app, 'bob'),
        };
      },
    );
    let alice: string;
    let bob: string;
    beforeEach(() => {
      ({ alice, bob } = t.seeded);
    });

    it("a subclass still reads its own token: the global guard's success does not stand in for it", async () => {
      const res = await t.http
        .get('/sub/api')
        .set('Authorization', `Token ${alice}`);
      expectUnauthorized(res, MESSAGES.NOT_PROVIDED);
    });

    it('a subclass that reads another token authenticates that one', async () => {
      const res = await t.http
        .get('/sub/api')
        .set('Authorization', `Token ${alice}`)
        .set('X-Api-Token', bob);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ username: 'bob' });
      const wrong = await t.http
        .get('/sub/api')
        .set('Authorization', `Token ${alice}`)
        .set('X-Api-Token', `${bob}0`);
      expectUnauthorized(wrong, MESSAGES.INVALID_TOKEN);
    });

    it('the same token read by both guards costs one query', async () => {
      t.recorder.reset();
      const res = await t.http
        .get('/sub/api')
        .set('Authorization', `Token ${alice}`)
        .set('X-Api-Token', alice);
      expect(res.status).toBe(200);
      expect(t.recorder.statements).toHaveLength(1);
    });
  },
);

describe.each(PLATFORMS)(
  'a KnoxGuard subclass reading the token from the body (%s)',
  (platform) => {
    const t = useTestApp(
      { platform, controllers: [SubclassController] },
      async (app) => {
        await app.createUser('alice');
        return { alice: await login(app, 'alice') };
      },
    );
    let alice: string;
    beforeEach(() => {
      alice = t.seeded.alice;
    });

    it('a token that is not a string is a 401 "Invalid token.", never a 500', async () => {
      for (const token of [{ length: 64 }, 42, true, [alice], {}]) {
        const res = await t.http.post('/sub/rpc').send({ token });
        expectUnauthorized(res, MESSAGES.INVALID_TOKEN);
      }
      const ok = await t.http.post('/sub/rpc').send({ token: alice });
      expect(ok.status).toBe(200);
      expect(ok.body).toEqual({ username: 'alice' });
    });
  },
);
