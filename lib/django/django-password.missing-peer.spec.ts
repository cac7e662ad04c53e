import { describe, expect, it, jest } from '@jest/globals';
import {
  djangoFixtureUsers,
  type DjangoFixtureUser,
} from '../../test/support/django-fixture.js';

// As if neither package of either kind were installed.
for (const name of ['argon2', '@node-rs/argon2', 'bcrypt', 'bcryptjs']) {
  jest.unstable_mockModule(name, () => {
    throw Object.assign(new Error(`Cannot find package '${name}'`), {
      code: 'ERR_MODULE_NOT_FOUND',
    });
  });
}
const { verifyDjangoPassword, DjangoPasswordHasherUnavailableError } =
  await import('../index.js');

const users = djangoFixtureUsers();
const byAlgorithm = (algorithm: string): DjangoFixtureUser =>
  users.find((u) => u.algorithm === algorithm)!;

describe('verifyDjangoPassword without the optional packages', () => {
  it('an argon2 hash rejects with an error naming the package to install', async () => {
    const dave = byAlgorithm('argon2');
    const failure = verifyDjangoPassword(
      dave.password_plaintext!,
      dave.password,
    );
    await expect(failure).rejects.toBeInstanceOf(
      DjangoPasswordHasherUnavailableError,
    );
    await expect(failure).rejects.toThrow(
      "verifyDjangoPassword: this password was hashed by Django's Argon2PasswordHasher; " +
        'install the optional package `argon2` (npm install argon2) or `@node-rs/argon2` to verify it.',
    );
    await expect(failure).rejects.toMatchObject({
      packages: ['argon2', '@node-rs/argon2'],
    });
    // A wrong password gets the same error: whether it matches cannot be known.
    await expect(
      verifyDjangoPassword('wrong', dave.password),
    ).rejects.toBeInstanceOf(DjangoPasswordHasherUnavailableError);
  });

  it('a bcrypt_sha256 hash rejects naming bcrypt / bcryptjs', async () => {
    const erin = byAlgorithm('bcrypt_sha256');
    await expect(
      verifyDjangoPassword(erin.password_plaintext!, erin.password),
    ).rejects.toThrow(
      /install the optional package `bcrypt` \(npm install bcrypt\) or `bcryptjs` to verify it\. \(bcrypt: Cannot find package 'bcrypt'; bcryptjs: Cannot find package 'bcryptjs'\)/,
    );
  });

  it('PBKDF2 hashes need no package; malformed argon2/bcrypt encodings are false before any import', async () => {
    const alice = users.find((u) => u.username === 'alice')!;
    const carol = byAlgorithm('pbkdf2_sha1');
    expect(
      await verifyDjangoPassword(alice.password_plaintext!, alice.password),
    ).toBe(true);
    expect(
      await verifyDjangoPassword(carol.password_plaintext!, carol.password),
    ).toBe(true);
    expect(await verifyDjangoPassword('x', 'argon2$garbage')).toBe(false);
    expect(await verifyDjangoPassword('x', 'bcrypt_sha256$garbage')).toBe(
      false,
    );
  });
});
