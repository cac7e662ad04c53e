import { describe, expect, it } from '@jest/globals';
import { inspect } from 'node:util';
import { UnauthorizedException, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { KnoxGuard } from './knox.guard.js';
import { resolveKnoxOptions } from '../options/knox-options.js';
import { digestToken } from '../tokens/knox-token-format.js';
import type { KnoxTokenService } from '../knox-token.service.js';
import type { KnoxRequest } from '../knox-request.js';

/** Exposes the header parsing, which needs neither a database nor a token service. */
class HeaderParser extends KnoxGuard {
  constructor(authHeaderPrefix?: string | string[]) {
    super(
      undefined as unknown as KnoxTokenService,
      new Reflector(),
      resolveKnoxOptions({ validateUser: () => null, authHeaderPrefix }),
    );
  }

  parse(authorization: unknown): string | null {
    return this.extractToken({
      headers: { authorization },
    } as unknown as KnoxRequest);
  }
}

const TOKEN = 'a'.repeat(64);

function refusal(parser: HeaderParser, header: string): string {
  try {
    parser.parse(header);
  } catch (error) {
    expect(error).toBeInstanceOf(UnauthorizedException);
    return (error as UnauthorizedException).message;
  }
  throw new Error(`accepted ${JSON.stringify(header)}`);
}

describe('KnoxGuard.extractToken', () => {
  const parser = new HeaderParser();

  it('reads the token after a known scheme, compared case-insensitively', () => {
    expect(parser.parse(`Token ${TOKEN}`)).toBe(TOKEN);
    expect(parser.parse(`tOKEN ${TOKEN}`)).toBe(TOKEN);
    expect(parser.parse(`Bearer ${TOKEN}`)).toBe(TOKEN);
    expect(parser.parse(`Token  \t ${TOKEN}`)).toBe(TOKEN);
  });

  it('leaves other schemes and a missing header to others (null)', () => {
    expect(parser.parse(undefined)).toBeNull();
    expect(parser.parse('')).toBeNull();
    expect(parser.parse('Basic abc')).toBeNull();
    expect(parser.parse(['Token', TOKEN])).toBeNull();
    expect(new HeaderParser('Baerer').parse(`Token ${TOKEN}`)).toBeNull();
  });

  it('words the header errors as knox does', () => {
    expect(refusal(parser, 'Token')).toBe(
      'Invalid token header. No credentials provided.',
    );
    expect(refusal(parser, 'Token a b')).toBe(
      'Invalid token header. Token string should not contain spaces.',
    );
  });

  it('refuses every control character and every non-ASCII character with a 401', () => {
    const bad = [
      ...Array.from({ length: 0x20 }, (_, code) => code).filter(
        (code) => code !== 0x09,
      ),
      0x7f,
      0x80,
      0xa0,
      0xff,
      0xfffd,
      0xd800,
    ];
    for (const code of bad) {
      const char = String.fromCharCode(code);
      expect(
        refusal(parser, `Token ${TOKEN.slice(0, 8)}${char}${TOKEN.slice(8)}`),
      ).toMatch(/^Invalid token/);
      expect(refusal(parser, `Token ${char}`)).toMatch(/^Invalid token/);
    }
  });
});

/** A token service that accepts one token per user, and counts its calls. */
class FakeTokens {
  calls: string[] = [];
  constructor(private readonly users: Record<string, { id: number }>) {}
  async authenticate(token: string) {
    this.calls.push(token);
    const user = this.users[token];
    if (!user) {
      throw new UnauthorizedException('Invalid token.');
    }
    // A record as the service returns it: stored under the token's digest, with its user.
    return {
      user,
      token: { id: `token-of-${user.id}`, digest: digestToken(token), user },
    };
  }
}

function guardWith(tokens: FakeTokens): KnoxGuard {
  return new KnoxGuard(
    tokens as unknown as KnoxTokenService,
    new Reflector(),
    resolveKnoxOptions({ validateUser: () => null }),
  );
}

function httpContext(request: object): ExecutionContext {
  return {
    getType: () => 'http',
    getHandler: () => httpContext,
    getClass: () => KnoxGuard,
    switchToHttp: () => ({
      getRequest: () => request,
      getResponse: () => ({ setHeader: () => undefined }),
    }),
  } as unknown as ExecutionContext;
}

const ALICE = 'a'.repeat(64);
const BOB = 'b'.repeat(64);

describe('KnoxGuard.canActivate on a request object it has seen before', () => {
  it('authenticates once per request when the token is the same', async () => {
    const tokens = new FakeTokens({ [ALICE]: { id: 1 } });
    const request = { headers: { authorization: `Token ${ALICE}` } };
    await guardWith(tokens).canActivate(httpContext(request));
    await guardWith(tokens).canActivate(httpContext(request));
    expect(tokens.calls).toHaveLength(1);
  });

  it('does not take another service’s authentication for its own', async () => {
    const users = { [ALICE]: { id: 1 } };
    const first = new FakeTokens(users);
    const second = new FakeTokens(users);
    const request = { headers: { authorization: `Token ${ALICE}` } };
    await guardWith(first).canActivate(httpContext(request));
    await guardWith(second).canActivate(httpContext(request));
    expect([first.calls, second.calls]).toEqual([[ALICE], [ALICE]]);
  });

  it('leaves no property of its own on the request besides user and auth', async () => {
    const tokens = new FakeTokens({ [ALICE]: { id: 1 } });
    const request = { headers: { authorization: `Token ${ALICE}` } };
    await guardWith(tokens).canActivate(httpContext(request));
    expect(Reflect.ownKeys(request)).toEqual(['headers', 'user', 'auth']);
    // The record's mark names the service by an opaque id: a logged record does not print it.
    expect(inspect(request, { depth: 10 })).not.toContain('FakeTokens');
    expect(JSON.parse(JSON.stringify(request))).toEqual({
      headers: request.headers,
      user: { id: 1 },
      auth: { id: 'token-of-1', digest: digestToken(ALICE), user: { id: 1 } },
    });
  });

  it('refuses it once its credentials are gone', async () => {
    const tokens = new FakeTokens({ [ALICE]: { id: 1 } });
    const request: KnoxRequest = {
      headers: { authorization: `Token ${ALICE}` },
    };
    const guard = guardWith(tokens);
    await expect(guard.canActivate(httpContext(request))).resolves.toBe(true);
    request.headers = {};
    await expect(guard.canActivate(httpContext(request))).rejects.toThrow(
      'Authentication credentials were not provided.',
    );
  });

  it('authenticates a different token anew, and puts its user on the request', async () => {
    const tokens = new FakeTokens({ [ALICE]: { id: 1 }, [BOB]: { id: 2 } });
    const request: KnoxRequest = {
      headers: { authorization: `Token ${ALICE}` },
    };
    const guard = guardWith(tokens);
    await guard.canActivate(httpContext(request));
    request.headers = { authorization: `Token ${BOB}` };
    await expect(guard.canActivate(httpContext(request))).resolves.toBe(true);
    expect(request.user).toEqual({ id: 2 });
    request.headers = { authorization: `Token ${'c'.repeat(64)}` };
    await expect(guard.canActivate(httpContext(request))).rejects.toThrow(
      'Invalid token.',
    );
  });
});

describe('KnoxGuard subclass for a WebSocket client', () => {
  /** A socket.io-like client: no `headers`, the token in the handshake. */
  class WsGuard extends KnoxGuard {
    protected override getRequest(context: ExecutionContext): KnoxRequest {
      return context.switchToWs().getClient<KnoxRequest>();
    }
    protected override extractToken(request: KnoxRequest): string | null {
      const handshake = request.handshake as { auth?: { token?: string } };
      return handshake.auth?.token ?? null;
    }
  }

  it('authenticates a client without `headers` (no TypeError)', async () => {
    const tokens = new FakeTokens({ [ALICE]: { id: 1 } });
    const client = { handshake: { auth: { token: ALICE } } } as object;
    const guard = new WsGuard(
      tokens as unknown as KnoxTokenService,
      new Reflector(),
      resolveKnoxOptions({ validateUser: () => null }),
    );
    const context = {
      getType: () => 'ws',
      getHandler: () => WsGuard,
      getClass: () => WsGuard,
      switchToWs: () => ({ getClient: () => client }),
    } as unknown as ExecutionContext;
    await expect(guard.canActivate(context)).resolves.toBe(true);
    expect((client as KnoxRequest).user).toEqual({ id: 1 });
  });
});
