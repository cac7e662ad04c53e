import { describe, expect, it } from '@jest/globals';
import { ForbiddenException, UnauthorizedException } from '@nestjs/common';
import { KnoxMessages } from '../knox.messages.js';
import { resolveKnoxOptions } from '../options/knox-options.js';
import type { KnoxModuleOptions } from '../options/knox-module-options.interface.js';
import type { KnoxRequest } from '../knox-request.js';
import {
  checkKnoxCsrf,
  knoxClearedCookie,
  knoxTokenCookie,
  readKnoxCookie,
} from './knox-cookie.js';
import type { ResolvedKnoxCookie } from '../options/knox-cookie-options.js';

const validateUser = () => null;
const cookieOf = (cookie: KnoxModuleOptions['cookie']) =>
  resolveKnoxOptions({ validateUser, cookie }).cookie;
const failure = (cookie: unknown) => {
  try {
    resolveKnoxOptions({
      validateUser,
      cookie,
    } as unknown as KnoxModuleOptions);
  } catch (error) {
    return (error as Error).message;
  }
  return null;
};

describe('cookie options', () => {
  it('are off by default; true takes the defaults', () => {
    expect(resolveKnoxOptions({ validateUser }).cookie).toBeNull();
    expect(cookieOf(false)).toBeNull();
    expect(cookieOf(true)).toEqual({
      name: '__Host-knox_token',
      secure: true,
      sameSite: 'strict',
      path: '/',
      domain: null,
      trustedOrigins: [],
    });
  });

  it('normalises trusted origins and refuses what is not an origin', () => {
    expect(
      cookieOf({ trustedOrigins: ['https://App.Example.com'] })!.trustedOrigins,
    ).toEqual(['https://app.example.com']);
    expect(
      failure({ trustedOrigins: ['https://app.example.com/path'] }),
    ).toMatch(/`cookie.trustedOrigins` must be a list of origins/);
    expect(failure({ trustedOrigins: ['*'] })).toMatch(/got \*/);
    expect(failure({ trustedOrigins: 'https://a.example' })).toMatch(
      /must be a list/,
    );
  });

  it('refuses SameSite=None, bad names and paths, unknown keys, and misused prefixes', () => {
    expect(failure({ sameSite: 'none' })).toMatch(/must never be 'none'/);
    expect(failure({ name: 'a b' })).toMatch(
      /`cookie.name` must be a cookie name/,
    );
    expect(failure({ path: 'api' })).toMatch(/`cookie.path` must be a path/);
    expect(failure({ secure: 'yes' })).toMatch(/cookie.secure/);
    expect(failure({ sameSite: 'strict', httpOnly: false })).toMatch(
      /httpOnly/,
    );
    expect(failure({ name: '__Host-knox', domain: 'example.com' })).toMatch(
      /`__Host-`/,
    );
    expect(failure({ name: '__Secure-knox', secure: false })).toMatch(
      /`__Secure-`/,
    );
    expect(failure('yes')).toMatch(/`cookie` must be true, false or an object/);
    expect(cookieOf({ name: '__Host-knox' })!.name).toBe('__Host-knox');
  });
});

describe('cookie values and the Origin check', () => {
  const cookie: ResolvedKnoxCookie = {
    name: 'knox_token',
    secure: true,
    sameSite: 'lax',
    path: '/api',
    domain: 'example.com',
    trustedOrigins: ['https://app.example.com'],
  };

  it('writes and clears the cookie with the same attributes', () => {
    expect(
      knoxTokenCookie(cookie, 'abc', new Date('2030-01-01T00:00:00Z')),
    ).toBe(
      'knox_token=abc; Expires=Tue, 01 Jan 2030 00:00:00 GMT; Path=/api; Domain=example.com; HttpOnly; Secure; SameSite=Lax',
    );
    expect(knoxClearedCookie(cookie)).toBe(
      'knox_token=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/api; Domain=example.com; HttpOnly; Secure; SameSite=Lax',
    );
  });

  it('reads its own cookie among others, quoted or not', () => {
    const read = (header: string) =>
      readKnoxCookie({ headers: { cookie: header } }, cookie);
    expect(read('a=1; knox_token=tok; b=2')).toBe('tok');
    expect(read('knox_token="tok"')).toBe('tok');
    expect(read('xknox_token=tok')).toBeNull();
    expect(read('knox_token=')).toBeNull();
    // The same value twice (one cookie set under two paths) is one token.
    expect(read('knox_token=tok; knox_token=tok')).toBe('tok');
  });

  it('refuses several token cookies with different values (cookie tossing): 401, not the first', () => {
    const read = (header: string) => () =>
      readKnoxCookie({ headers: { cookie: header } }, cookie);
    for (const header of [
      'knox_token=planted; knox_token=mine',
      'a=1; knox_token=mine; b=2; knox_token="planted"',
    ]) {
      expect(read(header)).toThrow(UnauthorizedException);
      expect(read(header)).toThrow(KnoxMessages.COOKIE_SEVERAL('knox_token'));
    }
    // An empty one (a cleared cookie) does not count.
    expect(read('knox_token=; knox_token=mine')()).toBe('mine');
  });

  it('defaults the name to __Host-knox_token when the browser can pin it to the host', () => {
    expect(cookieOf({})!.name).toBe('__Host-knox_token');
    expect(cookieOf({ secure: false })!.name).toBe('knox_token');
    expect(cookieOf({ domain: 'example.com' })!.name).toBe(
      '__Secure-knox_token',
    );
    expect(cookieOf({ path: '/api' })!.name).toBe('__Secure-knox_token');
    expect(cookieOf({ name: 'sid' })!.name).toBe('sid');
  });

  it('lets safe methods through and checks the origin of the others', () => {
    const check = (method: string, headers: Record<string, string>) => () =>
      checkKnoxCsrf(
        {
          method,
          protocol: 'https',
          headers: { host: 'api.example.com', ...headers },
        } as KnoxRequest,
        cookie,
      );
    expect(check('GET', {})).not.toThrow();
    expect(check('HEAD', { origin: 'https://evil.example' })).not.toThrow();
    expect(check('POST', { origin: 'https://api.example.com' })).not.toThrow();
    expect(
      check('DELETE', { origin: 'https://app.example.com' }),
    ).not.toThrow();
    expect(check('PUT', { origin: 'https://evil.example' })).toThrow(
      ForbiddenException,
    );
    expect(check('PATCH', {})).toThrow(ForbiddenException);
    expect(check('WEBSOCKET', { origin: 'https://evil.example' })).toThrow(
      ForbiddenException,
    );
    expect(check('POST', { origin: 'javascript:alert(1)' })).toThrow(
      ForbiddenException,
    );
  });
});
