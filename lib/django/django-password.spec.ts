import { describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import {
  DJANGO_PBKDF2_ITERATIONS,
  djangoPasswordNeedsRehash,
  isDjangoPasswordUsable,
  makeDjangoPassword,
  verifyDjangoPassword,
} from './django-password.js';
import { DJANGO_PEER_CANDIDATES } from './django-optional-peers.js';
import {
  djangoFixtureIterations,
  djangoFixtureUsers,
} from '../../test/support/django-fixture.js';

const users = djangoFixtureUsers();
const withPassword = users.filter((u) => u.password_plaintext !== null);
const grace = users.find((u) => !u.usable_password)!;

describe('verifyDjangoPassword on the hashes Django 3.2 stored (fixture users.json)', () => {
  it('the fixture has every hasher the issue names, and one unusable password', () => {
    expect(new Set(withPassword.map((u) => u.algorithm))).toEqual(
      new Set(['pbkdf2_sha256', 'pbkdf2_sha1', 'argon2', 'bcrypt_sha256']),
    );
    expect(grace.password).toMatch(/^!.{40}$/);
  });

  it.each(withPassword.map((u) => [u.username, u.algorithm, u] as const))(
    '%s (%s): the plaintext verifies, changed ones do not',
    async (_name, _algorithm, user) => {
      const plain = user.password_plaintext!;
      expect(await verifyDjangoPassword(plain, user.password)).toBe(true);
      for (const wrong of [`${plain}x`, plain.slice(0, -1), '']) {
        expect(await verifyDjangoPassword(wrong, user.password)).toBe(false);
      }
    },
  );

  it("bob's non-ASCII password with a colon and spaces is hashed from its UTF-8 bytes", async () => {
    const bob = users.find((u) => u.username === 'bob')!;
    expect(bob.password_plaintext).toBe('pässwörd: bøb ✓');
    expect(await verifyDjangoPassword('pässwörd: bøb ✓', bob.password)).toBe(
      true,
    );
    // The same text in another Unicode normalization is other bytes, as in Django.
    expect(
      await verifyDjangoPassword(
        bob.password_plaintext!.normalize('NFD'),
        bob.password,
      ),
    ).toBe(false);
  });

  it("grace's unusable password verifies nothing", async () => {
    expect(isDjangoPasswordUsable(grace.password)).toBe(false);
    for (const attempt of [
      '',
      '!',
      grace.password,
      grace.password.slice(1),
      ...withPassword.map((u) => u.password_plaintext!),
    ]) {
      expect(await verifyDjangoPassword(attempt, grace.password)).toBe(false);
    }
  });

  it("a password verifies against its own user's hash only", async () => {
    const alice = users.find((u) => u.username === 'alice')!;
    const heidi = users.find((u) => u.username === 'heidi')!;
    expect(
      await verifyDjangoPassword(alice.password_plaintext!, heidi.password),
    ).toBe(false);
  });
});

describe("verifyDjangoPassword on Django's own test vectors", () => {
  // From Django's tests/auth_tests/test_hashers.py (Django 4.2: 600 000 iterations).
  it.each([
    [
      'pbkdf2_sha256',
      'pbkdf2_sha256$600000$seasalt$OAXyhAQ/4ZDA9V5RMExt3C1OwQdUpLZ99vm1McFlLRA=',
    ],
    [
      'pbkdf2_sha256 (seasalt2)',
      'pbkdf2_sha256$600000$seasalt2$OSllgFdJjYQjb0RfMzrx8u0XYl4Fkt+wKpI1yq4lZlo=',
    ],
    ['pbkdf2_sha1', 'pbkdf2_sha1$600000$seasalt2$2CLsaL1MZhq6JOG6QOHtVbiopHE='],
    [
      'scrypt (Django 4.0+)',
      'scrypt$16384$seasalt$8$1$Qj3+9PPyRjSJIebHnG81TMjsqtaIGxNQG/aEB/NYafTJ7tibgfYz71m0ldQESkXFRkdVCBhhY8mx7rQwite/Pw==',
    ],
  ])('%s', async (_name, encoded) => {
    expect(await verifyDjangoPassword('lètmein', encoded)).toBe(true);
    expect(await verifyDjangoPassword('lètmeinz', encoded)).toBe(false);
    expect(await verifyDjangoPassword('letmein', encoded)).toBe(false);
  });

  it.each([
    [
      'argon2i without a version',
      'argon2$argon2i$m=8,t=1,p=1$c29tZXNhbHQ$gwQOXSNhxiOxPOA0+PY10P9QFO4NAYysnqRt1GSQLE55m+2GYDt9FEjPMHhP2Cuf0nOEXXMocVrsJAtNSsKyfg',
    ],
    [
      'argon2i v=19',
      'argon2$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$YC9+jJCrQhs5R6db7LlN8Q',
    ],
  ])('older Django argon2 hashes: %s', async (_name, encoded) => {
    expect(await verifyDjangoPassword('secret', encoded)).toBe(true);
    expect(await verifyDjangoPassword('wrong', encoded)).toBe(false);
  });
});

describe('plain bcrypt (BCryptPasswordHasher, not in the fixture)', () => {
  it('verifies a `bcrypt$` hash of the raw password', async () => {
    const bcryptjs = (await import('bcryptjs')).default;
    const encoded = `bcrypt$${await bcryptjs.hash('lètmein', 4)}`;
    expect(await verifyDjangoPassword('lètmein', encoded)).toBe(true);
    expect(await verifyDjangoPassword('lètmeinz', encoded)).toBe(false);
    // bcrypt_sha256 and bcrypt are not interchangeable.
    expect(
      await verifyDjangoPassword(
        'lètmein',
        `bcrypt_sha256$${encoded.slice(7)}`,
      ),
    ).toBe(false);
  });
});

describe('each optional package verifies what Django stored', () => {
  const dave = users.find((u) => u.algorithm === 'argon2')!;
  const erin = users.find((u) => u.algorithm === 'bcrypt_sha256')!;

  it.each(DJANGO_PEER_CANDIDATES.argon2.map((c) => [c.name, c] as const))(
    'argon2 through %s',
    async (name, candidate) => {
      const verify = candidate.adapt(await import(name));
      const phc = dave.password.slice('argon2'.length);
      expect(await verify(dave.password_plaintext!, phc)).toBe(true);
      expect(await verify('dave-pw-argon3', phc)).toBe(false);
    },
  );

  it.each(DJANGO_PEER_CANDIDATES.bcrypt.map((c) => [c.name, c] as const))(
    'bcrypt_sha256 through %s',
    async (name, candidate) => {
      const compare = candidate.adapt(await import(name));
      const hash = erin.password.slice('bcrypt_sha256$'.length);
      const hex = (p: string) =>
        createHash('sha256').update(p, 'utf8').digest('hex');
      expect(await compare(hex(erin.password_plaintext!), hash)).toBe(true);
      expect(await compare(hex('erin-pw-bcrypT'), hash)).toBe(false);
    },
  );
});

describe('malformed input resolves false, never throws', () => {
  const alice = users.find((u) => u.username === 'alice')!;
  const [, iterations, salt, hash] = alice.password.split('$');

  it.each([
    ['null', null],
    ['undefined', undefined],
    ['empty', ''],
    ['no algorithm', '$260000$salt$hash'],
    ['algorithm only', 'pbkdf2_sha256'],
    ['algorithm and $', 'pbkdf2_sha256$'],
    ['missing hash', `pbkdf2_sha256$${iterations}$${salt}`],
    ['empty hash', `pbkdf2_sha256$${iterations}$${salt}$`],
    ['extra field', `${alice.password}$x`],
    ['iterations not a number', `pbkdf2_sha256$abc$${salt}$${hash}`],
    ['iterations zero', `pbkdf2_sha256$0$${salt}$${hash}`],
    ['iterations negative', `pbkdf2_sha256$-5$${salt}$${hash}`],
    ['iterations huge', `pbkdf2_sha256$9999999999$${salt}$${hash}`],
    ['iterations with a sign', `pbkdf2_sha256$+260000$${salt}$${hash}`],
    ['empty salt', `pbkdf2_sha256$${iterations}$$${hash}`],
    ['hash not base64', `pbkdf2_sha256$${iterations}$${salt}$***`],
    [
      'right hash, wrong algorithm',
      `pbkdf2_sha1$${iterations}$${salt}$${hash}`,
    ],
    ['unknown algorithm', `lolcat$${iterations}$${salt}$${hash}`],
    [
      'legacy md5 (not supported)',
      'md5$seasalt$3f86d0d3d465b7b458c231bf3555c0e3',
    ],
    ['legacy unsalted md5', '88a434c88cca4e900f7874cd98123f43'],
    ['scrypt N not a power of 2', 'scrypt$16383$seasalt$8$1$AAAA'],
    ['scrypt N = 1', 'scrypt$1$seasalt$8$1$AAAA'],
    ['scrypt memory absurd', 'scrypt$1073741824$seasalt$8$1$AAAA'],
    ['scrypt missing fields', 'scrypt$16384$seasalt$8$AAAA'],
    ['scrypt p refused by OpenSSL', 'scrypt$16384$seasalt$8$999999999$AAAA'],
    ['argon2 without variant', 'argon2$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA'],
    ['argon2 garbage', 'argon2$argon2id$garbage'],
    ['argon2 empty', 'argon2$'],
    ['bcrypt_sha256 garbage', 'bcrypt_sha256$garbage'],
    ['bcrypt_sha256 truncated', 'bcrypt_sha256$$2b$12$6SYt2AsqW6MJmMkc2PLhNe'],
    ['bcrypt empty', 'bcrypt$'],
  ])('%s', async (_name, encoded) => {
    await expect(verifyDjangoPassword('alice-pw-1', encoded)).resolves.toBe(
      false,
    );
  });

  it('a password that is not a string, or not well-formed UTF-16, is false', async () => {
    for (const password of [null, undefined, 42, {}, ['alice-pw-1']]) {
      await expect(
        verifyDjangoPassword(password as unknown as string, alice.password),
      ).resolves.toBe(false);
    }
    const encoded = await makeDjangoPassword('a\uFFFD', { iterations: 1 });
    // A lone surrogate would be hashed as U+FFFD; Python refuses to encode it.
    expect(await verifyDjangoPassword('a\uD800', encoded)).toBe(false);
    expect(await verifyDjangoPassword('a\uDC00', encoded)).toBe(false);
    expect(await verifyDjangoPassword('a\uFFFD', encoded)).toBe(true);
  });
});

describe('makeDjangoPassword and djangoPasswordNeedsRehash', () => {
  const fixtureIterations = djangoFixtureIterations();

  it("makes Django's pbkdf2_sha256 format, salted anew each time", async () => {
    const a = await makeDjangoPassword('lètmein', { iterations: 1000 });
    const b = await makeDjangoPassword('lètmein', { iterations: 1000 });
    expect(a).toMatch(
      /^pbkdf2_sha256\$1000\$[A-Za-z0-9]{22}\$[A-Za-z0-9+/]{43}=$/,
    );
    expect(a).not.toBe(b);
    expect(await verifyDjangoPassword('lètmein', a)).toBe(true);
    expect(await verifyDjangoPassword('lètmeinz', a)).toBe(false);
    // Django's column is varchar(128): room for even a ten-digit iteration count.
    expect(a.length - '1000'.length + '1000000000'.length).toBeLessThanOrEqual(
      128,
    );
  });

  it(`defaults to ${DJANGO_PBKDF2_ITERATIONS} iterations (Django 5.2)`, async () => {
    const encoded = await makeDjangoPassword('pw');
    expect(encoded.split('$')[1]).toBe(String(DJANGO_PBKDF2_ITERATIONS));
    expect(djangoPasswordNeedsRehash(encoded)).toBe(false);
  });

  it("the fixture's pbkdf2_sha256 hashes are current at Django 3.2's count, outdated at a higher one", () => {
    for (const user of withPassword.filter(
      (u) => u.algorithm === 'pbkdf2_sha256',
    )) {
      expect(
        djangoPasswordNeedsRehash(user.password, {
          iterations: fixtureIterations,
        }),
      ).toBe(false);
      expect(
        djangoPasswordNeedsRehash(user.password, { iterations: 600_000 }),
      ).toBe(true);
      expect(djangoPasswordNeedsRehash(user.password)).toBe(true);
    }
  });

  it("other hashers always need a rehash, as with Django's default PASSWORD_HASHERS", () => {
    for (const user of withPassword.filter(
      (u) => u.algorithm !== 'pbkdf2_sha256',
    )) {
      expect(
        djangoPasswordNeedsRehash(user.password, {
          iterations: fixtureIterations,
        }),
      ).toBe(true);
    }
  });

  it('a weak salt needs a rehash; an unusable password never does', () => {
    expect(
      djangoPasswordNeedsRehash(
        'pbkdf2_sha256$600000$seasalt$OAXyhAQ/4ZDA9V5RMExt3C1OwQdUpLZ99vm1McFlLRA=',
        { iterations: 600_000 },
      ),
    ).toBe(true);
    expect(djangoPasswordNeedsRehash(grace.password)).toBe(false);
    expect(djangoPasswordNeedsRehash(null)).toBe(false);
  });

  it('the rehash round trip: verify, make, verify again', async () => {
    const carol = users.find((u) => u.username === 'carol')!;
    expect(
      await verifyDjangoPassword(carol.password_plaintext!, carol.password),
    ).toBe(true);
    const options = { iterations: 2000 };
    expect(djangoPasswordNeedsRehash(carol.password, options)).toBe(true);
    const rehashed = await makeDjangoPassword(
      carol.password_plaintext!,
      options,
    );
    expect(djangoPasswordNeedsRehash(rehashed, options)).toBe(false);
    expect(
      await verifyDjangoPassword(carol.password_plaintext!, rehashed),
    ).toBe(true);
  });

  it('refuses a bad iteration count with a message saying what to pass', async () => {
    for (const iterations of [0, -1, 1.5, Number.NaN, 2 ** 31]) {
      expect(() => djangoPasswordNeedsRehash('x', { iterations })).toThrow(
        /`iterations` must be a positive integer/,
      );
      await expect(makeDjangoPassword('x', { iterations })).rejects.toThrow(
        /`iterations` must be a positive integer/,
      );
    }
    await expect(
      makeDjangoPassword('a\uD800', { iterations: 1 }),
    ).rejects.toThrow(TypeError);
  });
});
