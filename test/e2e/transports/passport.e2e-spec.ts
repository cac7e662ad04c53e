import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  Controller,
  Get,
  Injectable,
  Module,
  Req,
  UseGuards,
} from '@nestjs/common';
import { JwtModule, JwtService } from '@nestjs/jwt';
import { AuthGuard, PassportStrategy } from '@nestjs/passport';
import { ExtractJwt, Strategy as JwtBase } from 'passport-jwt';
import {
  KnoxAbilities,
  KnoxAuth,
  KnoxMessages,
  type KnoxToken,
} from '../../../lib/index.js';
import { KnoxStrategy } from '../../../lib/transports/passport/index.js';
import type { TestUser } from '../../support/fixtures.js';
import { createTestApp, login, type TestApp } from '../../support/test-app.js';

const JWT_SECRET = 'a-test-secret-of-enough-length-for-hs256';

/** Another audience's tokens: JWTs in `Authorization: Bearer …`. */
@Injectable()
class JwtStrategy extends PassportStrategy(JwtBase, 'jwt') {
  constructor() {
    super({
      jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
      secretOrKey: JWT_SECRET,
    });
  }

  validate(payload: { sub: string }) {
    return { username: payload.sub, via: 'jwt' };
  }
}

type PassportRequest = { user: TestUser | { username: string; via: string } };

@Controller('passport')
class PassportController {
  @UseGuards(AuthGuard(['jwt', 'knox']))
  @Get('either')
  either(@Req() request: PassportRequest, @KnoxAuth() auth?: KnoxToken) {
    return {
      username: request.user.username,
      via: 'via' in request.user ? request.user.via : 'knox',
      tokenId: auth?.id ?? null,
    };
  }

  @UseGuards(AuthGuard(['knox', 'jwt']))
  @Get('knox-first')
  knoxFirst(@Req() request: PassportRequest) {
    return { username: request.user.username };
  }

  @UseGuards(AuthGuard('knox'))
  @KnoxAbilities('posts:write')
  @Get('write')
  write(@Req() request: PassportRequest) {
    return { username: request.user.username };
  }

  @UseGuards(AuthGuard('knox'))
  @Get('knox')
  knox(@Req() request: PassportRequest) {
    return { username: request.user.username };
  }
}

@Module({
  imports: [JwtModule.register({ secret: JWT_SECRET })],
  controllers: [PassportController],
  providers: [KnoxStrategy, JwtStrategy],
})
class PassportApp {}

describe("KnoxStrategy: AuthGuard(['jwt', 'knox'])", () => {
  let t: TestApp;
  let jwt: string;
  beforeAll(async () => {
    t = await createTestApp({
      imports: [PassportApp],
      knox: { loginAbilities: ['posts:read', 'posts:write'] },
    });
    await t.createUser('alice');
    jwt = t.app.get(JwtService).sign({ sub: 'carol' });
  });
  afterAll(() => t.close());

  it('accepts a knox token, with request.user the user and @KnoxAuth the token', async () => {
    const token = await login(t, 'alice');
    const [row] = await t.tokenRows();
    const res = await t.http
      .get('/passport/either')
      .set('Authorization', `Token ${token}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      username: 'alice',
      via: 'knox',
      tokenId: row.id,
    });
  });

  it('accepts a JWT, whichever strategy comes first', async () => {
    for (const path of ['/passport/either', '/passport/knox-first']) {
      const res = await t.http.get(path).set('Authorization', `Bearer ${jwt}`);
      expect(res.status).toBe(200);
      expect(res.body.username).toBe('carol');
    }
  });

  it('refuses no token, a wrong token, a malformed header and a forged JWT with 401', async () => {
    const cases: Record<string, string>[] = [
      {},
      { Authorization: `Token ${'x'.repeat(64)}` },
      { Authorization: 'Token a b' },
      { Authorization: `Bearer ${jwt.slice(0, -2)}xx` },
    ];
    for (const headers of cases) {
      const res = await t.http.get('/passport/either').set(headers);
      expect(res.status).toBe(401);
    }
  });

  it('a revoked token is refused at once', async () => {
    const token = await login(t, 'alice');
    const before = await t.http
      .get('/passport/knox')
      .set('Authorization', `Token ${token}`);
    expect(before.status).toBe(200);
    await t.http.post('/auth/logout').set('Authorization', `Token ${token}`);
    const after = await t.http
      .get('/passport/either')
      .set('Authorization', `Token ${token}`);
    expect(after.status).toBe(401);
  });

  it("AuthGuard('knox') alone: knox tokens only, the knox message as the passport challenge", async () => {
    const refusedJwt = await t.http
      .get('/passport/knox')
      .set('Authorization', `Bearer ${jwt}`);
    expect(refusedJwt.status).toBe(401);
    const strategy = t.app.get(KnoxStrategy);
    await expect(
      strategy.validate({
        headers: { authorization: `Token ${'x'.repeat(64)}` },
      }),
    ).resolves.toEqual([false, KnoxMessages.INVALID_TOKEN]);
    await expect(strategy.validate({ headers: {} })).resolves.toEqual([
      false,
      KnoxMessages.NOT_PROVIDED,
    ]);
  });

  it("AuthGuard('knox') enforces @KnoxAbilities as KnoxGuard does: 403 insufficient_scope", async () => {
    const reader = await login(t, 'alice', undefined, {
      abilities: ['posts:read'],
    });
    const refused = await t.http
      .get('/passport/write')
      .set('Authorization', `Token ${reader}`);
    expect({
      status: refused.status,
      wwwAuthenticate: refused.headers['www-authenticate'],
      message: refused.body.message,
    }).toEqual({
      status: 403,
      wwwAuthenticate: 'Token error="insufficient_scope", scope="posts:write"',
      message: KnoxMessages.MISSING_ABILITIES(['posts:write']),
    });
    const writer = await login(t, 'alice', undefined, {
      abilities: ['posts:write'],
    });
    const admitted = await t.http
      .get('/passport/write')
      .set('Authorization', `Token ${writer}`);
    expect(admitted.status).toBe(200);
    expect(admitted.body).toEqual({ username: 'alice' });
  });
});
