import { describe, expect, it } from '@jest/globals';
import { UnauthorizedException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { KnoxGuard } from './knox.guard.js';
import { resolveKnoxOptions } from './knox-options.js';
import type { KnoxTokenService } from './knox-token.service.js';
import type { KnoxRequest } from './interfaces/knox-module-options.interface.js';

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
