import { describe, expect, it } from '@jest/globals';
import {
  allowedMethods,
  knoxRoutePaths,
  methodsOf,
} from './knox-method-not-allowed.js';

describe('allowedMethods', () => {
  it.each([
    ['/auth/login', ['POST']],
    ['/api/v1/auth/logoutall/', ['POST']],
    ['/auth/rotate?x=1', ['POST']],
    ['/auth/tokens', ['GET', 'POST']],
    ['/auth/tokens/7d1e2f3a', ['PATCH', 'DELETE']],
    // A token id that reads like a route is still a token id.
    ['/auth/tokens/login', ['PATCH', 'DELETE']],
    ['/auth/tokens/tokens', ['PATCH', 'DELETE']],
    ['/elsewhere', []],
  ])('%s answers %j', (url, methods) => {
    expect(allowedMethods(url, true)).toEqual(methods);
  });

  it('POST /tokens only with personal access tokens on', () => {
    expect(allowedMethods('/auth/tokens', false)).toEqual(['GET']);
    expect(methodsOf('tokens', false)).toEqual(['GET']);
    expect(methodsOf('tokens/:id', false)).toEqual(['PATCH', 'DELETE']);
  });
});

describe('knoxRoutePaths', () => {
  it('mounts every route at the path, without doubled or leading slashes', () => {
    expect(knoxRoutePaths('/auth/').sort()).toEqual(
      [
        'auth/login',
        'auth/logout',
        'auth/logoutall',
        'auth/logoutothers',
        'auth/refresh',
        'auth/rotate',
        'auth/tokens',
        'auth/tokens/:id',
      ].sort(),
    );
  });
});
