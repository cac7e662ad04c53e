import 'reflect-metadata';
import { describe, expect, it } from '@jest/globals';
import {
  grants,
  isAbility,
  missingAbilities,
  namesExactly,
  parseAbilities,
  unmetRequirement,
} from './knox-abilities.js';
import {
  KnoxAbilities,
  KnoxAnyAbility,
  abilityRequirementsOf,
} from './knox-abilities.decorator.js';

describe('grants', () => {
  it('null and "*" grant everything', () => {
    for (const ability of ['posts:read', '*', 'a:b:c', 'posts:*']) {
      expect(grants(null, ability)).toBe(true);
      expect(grants(undefined, ability)).toBe(true);
      expect(grants(['*'], ability)).toBe(true);
    }
  });

  it('"ns:*" grants what starts with "ns:", itself and deeper namespaces, nothing else', () => {
    const held = ['posts:*'];
    expect(grants(held, 'posts:read')).toBe(true);
    expect(grants(held, 'posts:comments:write')).toBe(true);
    expect(grants(held, 'posts:comments:*')).toBe(true);
    expect(grants(held, 'posts:*')).toBe(true);
    expect(grants(held, 'posts')).toBe(false);
    expect(grants(held, 'postsx:read')).toBe(false);
    expect(grants(held, '*')).toBe(false);
    expect(grants(['posts:comments:*'], 'posts:read')).toBe(false);
    expect(grants(['posts:comments:*'], 'posts:*')).toBe(false);
  });

  it('anything else grants exactly itself, case-sensitively; [] grants nothing', () => {
    expect(grants(['posts:read'], 'posts:read')).toBe(true);
    expect(grants(['posts:read'], 'Posts:Read')).toBe(false);
    expect(grants(['posts:read'], 'posts:read:all')).toBe(false);
    expect(grants(['posts:read'], 'posts:*')).toBe(false);
    expect(grants([], 'posts:read')).toBe(false);
    expect(missingAbilities(['a', 'b:*'], ['a', 'b:c', 'c', 'b'])).toEqual([
      'c',
      'b',
    ]);
  });

  it('namesExactly ignores wildcards and null', () => {
    expect(namesExactly(['tokens:create'], 'tokens:create')).toBe(true);
    expect(namesExactly(['*'], 'tokens:create')).toBe(false);
    expect(namesExactly(['tokens:*'], 'tokens:create')).toBe(false);
    expect(namesExactly(null, 'tokens:create')).toBe(false);
  });
});

describe('ability names', () => {
  it('accepts segments and a trailing ":*", refuses the rest', () => {
    for (const ok of ['*', 'read', 'posts:read', 'a.b-c_d/e:f', 'posts:*']) {
      expect({ ok, valid: isAbility(ok) }).toEqual({ ok, valid: true });
    }
    for (const bad of [
      '',
      ' ',
      'posts:',
      ':read',
      'posts::read',
      'posts:*:read',
      '*:read',
      'po*ts',
      'posts read',
      'posts"read',
      'é',
      'x'.repeat(101),
      42,
      null,
    ]) {
      expect({ bad, valid: isAbility(bad) }).toEqual({ bad, valid: false });
    }
  });

  it('parseAbilities drops duplicates and names the first bad item', () => {
    expect(parseAbilities(['a', 'b', 'a'], '`abilities`')).toEqual({
      abilities: ['a', 'b'],
    });
    expect(parseAbilities(['a', 7], '`abilities`')).toEqual({
      error: expect.stringMatching(/^`abilities`\[1\] is not an ability name/),
    });
    expect(parseAbilities(Array(65).fill('a'), '`abilities`')).toEqual({
      error: '`abilities` may hold at most 64 abilities; got 65.',
    });
  });
});

describe('@KnoxAbilities / @KnoxAnyAbility', () => {
  @KnoxAbilities('admin')
  class Base {
    @KnoxAbilities('posts:read')
    @KnoxAnyAbility('posts:admin', 'posts:moderate')
    route() {}

    plain() {}
  }

  @KnoxAbilities('extra')
  class Sub extends Base {}

  it("collects the controller's and the route's, stacked decorators adding up", () => {
    expect(abilityRequirementsOf(Base.prototype.route, Base)).toEqual([
      { mode: 'all', abilities: ['admin'] },
      { mode: 'all', abilities: ['posts:read'] },
      { mode: 'any', abilities: ['posts:admin', 'posts:moderate'] },
    ]);
    expect(abilityRequirementsOf(Base.prototype.plain, Base)).toEqual([
      { mode: 'all', abilities: ['admin'] },
    ]);
    // A subclass keeps its parent's requirements and adds its own.
    expect(abilityRequirementsOf(Sub.prototype.plain, Sub)).toEqual([
      { mode: 'all', abilities: ['admin'] },
      { mode: 'all', abilities: ['extra'] },
    ]);
    expect(abilityRequirementsOf(Sub.prototype.route, Sub)).toHaveLength(4);
    // The parent is unchanged by its subclass's decorator.
    expect(abilityRequirementsOf(Base.prototype.plain, Base)).toHaveLength(1);
  });

  it('unmetRequirement: all-of needs each, any-of needs one', () => {
    const requirements = abilityRequirementsOf(Base.prototype.route, Base);
    expect(
      unmetRequirement(['admin', 'posts:read', 'posts:moderate'], requirements),
    ).toBeUndefined();
    expect(
      unmetRequirement(['admin', 'posts:*'], requirements),
    ).toBeUndefined();
    expect(unmetRequirement(['admin', 'posts:read'], requirements)).toEqual(
      requirements[2],
    );
    expect(unmetRequirement(['posts:*'], requirements)).toEqual(
      requirements[0],
    );
    expect(unmetRequirement(null, requirements)).toBeUndefined();
  });

  it('refuses no ability or a malformed one when the class is declared', () => {
    expect(() => KnoxAbilities()).toThrow(
      '@KnoxAbilities() needs at least one ability.',
    );
    expect(() => KnoxAnyAbility('posts:read', 'bad ability')).toThrow(
      '@KnoxAnyAbility(): argument 1 ("bad ability") is not an ability name',
    );
  });
});
