import { Logger, type Type } from '@nestjs/common';
import type {
  DataSource,
  EntityManager,
  FindOptionsWhere,
  Repository,
} from 'typeorm';
import {
  DJANGO_PBKDF2_ITERATIONS,
  djangoMismatchDelay,
  djangoPasswordNeedsRehash,
  isDjangoPasswordUsable,
  makeDjangoPassword,
  verifyDjangoPassword,
} from './django-password.js';
import { DjangoUser, type DjangoAbstractUser } from './django-user.entity.js';

/** Options of {@link djangoValidateUser}. */
export interface DjangoValidateUserOptions<
  User extends DjangoAbstractUser = DjangoUser,
> {
  /**
   * The user entity, when `source` is a `DataSource` or an `EntityManager` (a `Repository`
   * already knows it): a custom user model extending {@link DjangoAbstractUser}.
   * @default DjangoUser (`auth_user`)
   */
  entity?: Type<User>;

  /**
   * The property looked up by the login's username, compared exactly (case-sensitively) as
   * Django's `ModelBackend` does: your model's `USERNAME_FIELD`.
   * @default 'username'
   */
  usernameField?: keyof User & string;

  /**
   * Your Django's PBKDF2 iteration count (`PBKDF2PasswordHasher.iterations`). Unknown usernames
   * and unusable passwords are checked against a dummy hash of this cost, so that they answer as
   * slowly as a wrong password; with `rehash`, it is the count new hashes get.
   * @default DJANGO_PBKDF2_ITERATIONS (1 000 000, Django 5.2)
   */
  iterations?: number;

  /**
   * After a password verifies, rewrite its hash as `pbkdf2_sha256` with `iterations` when
   * {@link djangoPasswordNeedsRehash} says it is outdated (another hasher, fewer iterations, a
   * weak salt), as Django's `check_password` does. The UPDATE only applies if the stored hash
   * is still the one verified (a password changed meanwhile is never overwritten). A failed
   * rewrite is logged and the login still succeeds. Off by default: it writes to Django's table.
   * @default false
   */
  rehash?: boolean;

  /**
   * Set `last_login` to now when an active user's password verifies, as Django does on login
   * (knox's `LoginView` sends `user_logged_in`). It is written before the token is issued, so
   * a login refused afterwards (e.g. the token limit) still counts.
   * @default false
   */
  updateLastLogin?: boolean;
}

/** A `DataSource`, `EntityManager` or the user `Repository` itself. */
export type DjangoUserSource<User extends DjangoAbstractUser> =
  Repository<User> | Pick<DataSource | EntityManager, 'getRepository'>;

const logger = new Logger('KnoxDjango');

/**
 * Builds KnoxModule's `validateUser` for users in Django's `auth_user` (or a custom user model):
 * finds the user by username and checks the password with {@link verifyDjangoPassword}, so
 * everyone logs in with the password they had on Django. Resolves the user (active or not:
 * KnoxModule then refuses an inactive one with 401 "User inactive or deleted.", as knox does),
 * or `null` for an unknown username, a wrong password and an unusable one, in about the same
 * time. Rejects with `DjangoPasswordHasherUnavailableError` when a hash needs an optional
 * package that is not installed (the login answers 503 and the error is logged).
 *
 * @example
 * KnoxModule.forRootAsync({
 *   userEntity: DjangoUser,
 *   inject: [DataSource],
 *   useFactory: (dataSource: DataSource) => ({
 *     validateUser: djangoValidateUser(dataSource, {
 *       iterations: 600_000, // your Django's PBKDF2PasswordHasher.iterations
 *       rehash: true,
 *     }),
 *   }),
 * })
 */
export function djangoValidateUser<
  User extends DjangoAbstractUser = DjangoUser,
>(
  source: DjangoUserSource<User>,
  options: DjangoValidateUserOptions<User> = {},
): (username: string, password: string) => Promise<User | null> {
  const iterations = options.iterations ?? DJANGO_PBKDF2_ITERATIONS;
  // Checks the option at boot, with the message of makeDjangoPassword.
  djangoPasswordNeedsRehash(null, { iterations });
  const usernameField = options.usernameField ?? 'username';
  const users = lazyRepository(source, options.entity);
  const mismatchDelay = djangoMismatchDelay(iterations);

  return async (username, password) => {
    if (typeof username !== 'string' || typeof password !== 'string') {
      return null;
    }
    const user = await users().findOneBy({
      [usernameField]: username,
    } as FindOptionsWhere<User>);
    if (!user || !isDjangoPasswordUsable(user.password)) {
      await mismatchDelay(password);
      return null;
    }
    if (!(await verifyDjangoPassword(password, user.password))) {
      return null;
    }
    await afterLogin(users(), user, password, options, iterations);
    return user;
  };
}

/** The user repository of `source`, resolved on first use (a `Repository` is used as is). */
function lazyRepository<User extends DjangoAbstractUser>(
  source: DjangoUserSource<User>,
  entity: Type<User> | undefined,
): () => Repository<User> {
  let repository: Repository<User> | undefined;
  return () =>
    (repository ??=
      'findOneBy' in source
        ? (source as Repository<User>)
        : source.getRepository(
            (entity ?? DjangoUser) as unknown as Type<User>,
          ));
}

/** The writes a successful login may cause (opt-in): a rehash, `last_login`. Never fails it. */
async function afterLogin<User extends DjangoAbstractUser>(
  users: Repository<User>,
  user: User,
  password: string,
  options: DjangoValidateUserOptions<User>,
  iterations: number,
): Promise<void> {
  const changes: Partial<DjangoAbstractUser> = {};
  if (
    options.rehash &&
    djangoPasswordNeedsRehash(user.password, { iterations })
  ) {
    changes.password = await makeDjangoPassword(password, { iterations });
  }
  if (options.updateLastLogin && user.isActive !== false) {
    changes.lastLogin = new Date();
  }
  if (Object.keys(changes).length === 0) {
    return;
  }
  try {
    await write(users, user, changes);
    Object.assign(user, changes);
  } catch (error) {
    logger.warn(
      `Could not update Django user ${String(user.id)} after login: ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
  }
}

async function write<User extends DjangoAbstractUser>(
  users: Repository<User>,
  user: User,
  changes: Partial<DjangoAbstractUser>,
): Promise<void> {
  const { password, ...rest } = changes;
  if (password !== undefined) {
    // Only over the hash that was verified: a password changed meanwhile (on Django too) wins.
    await users.update(
      { id: user.id, password: user.password } as FindOptionsWhere<User>,
      { password } as never,
    );
  }
  if (Object.keys(rest).length > 0) {
    await users.update(
      { id: user.id } as FindOptionsWhere<User>,
      rest as never,
    );
  }
}
