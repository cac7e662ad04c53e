import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/**
 * The columns of Django's `AbstractUser` (`django.contrib.auth`), with Django's column names and
 * types. Extend it for a custom user model that keeps Django's fields (`AUTH_USER_MODEL`), and
 * declare the entity as {@link DjangoUser} does: `@Entity({ name: '<your table>', synchronize:
 * false })`, so that TypeORM never alters the table Django owns.
 *
 * @example
 * // accounts.User(AbstractUser) with an extra `phone` field, in the table accounts_user:
 * @Entity({ name: 'accounts_user', synchronize: false })
 * export class AccountUser extends DjangoAbstractUser {
 *   @Column({ type: 'varchar', length: 32 }) phone: string;
 * }
 */
export abstract class DjangoAbstractUser {
  /** `id integer` (Django's `AutoField`). */
  @PrimaryGeneratedColumn({ type: 'integer' })
  id: number;

  /**
   * Django's encoded password (`<algorithm>$…`, or `!…` when unusable). Check it with
   * `verifyDjangoPassword`; never send it to a client.
   */
  @Column({ type: 'varchar', length: 128 })
  password: string;

  /** When the user last logged in; `null` if never. */
  @Column({ name: 'last_login', type: 'timestamptz', nullable: true })
  lastLogin: Date | null;

  /** Has every permission without them being assigned. */
  @Column({ name: 'is_superuser', type: 'boolean' })
  isSuperuser: boolean;

  /** Unique, case-sensitive (Django's `USERNAME_FIELD`). */
  @Column({ type: 'varchar', length: 150, unique: true })
  username: string;

  @Column({ name: 'first_name', type: 'varchar', length: 150 })
  firstName: string;

  @Column({ name: 'last_name', type: 'varchar', length: 150 })
  lastName: string;

  @Column({ type: 'varchar', length: 254 })
  email: string;

  /** May log into Django's admin site. */
  @Column({ name: 'is_staff', type: 'boolean' })
  isStaff: boolean;

  /**
   * Django's "soft delete": an inactive user cannot log in, and KnoxModule's default
   * `isUserActive` refuses its tokens (401 "User inactive or deleted."), as knox does.
   */
  @Column({ name: 'is_active', type: 'boolean' })
  isActive: boolean;

  @Column({ name: 'date_joined', type: 'timestamptz' })
  dateJoined: Date;

  /** Never serializes the password hash. */
  toJSON(): Omit<this, 'password' | 'toJSON'> {
    const { password: _password, ...rest } = this;
    return rest as Omit<this, 'password' | 'toJSON'>;
  }
}

/**
 * Django's `auth_user` table (the default `django.contrib.auth.models.User`), mapped read-write
 * but never synchronized: `synchronize: true`, `schema:sync` and `migration:generate` leave the
 * table as Django's migrations made it. Pass it as KnoxModule's `userEntity`, and check logins
 * with {@link djangoValidateUser}.
 *
 * Property names are camelCase (`isActive`, `lastLogin`, `dateJoined`); the columns keep
 * Django's names (`is_active`, `last_login`, `date_joined`).
 *
 * @example
 * TypeOrmModule.forRoot({ type: 'postgres', url, entities: [DjangoUser, knoxTokenEntity(DjangoUser)] }),
 * KnoxModule.forRootAsync({
 *   userEntity: DjangoUser,
 *   inject: [DataSource],
 *   useFactory: (dataSource: DataSource) => ({
 *     validateUser: djangoValidateUser(dataSource),
 *   }),
 * }),
 */
@Entity({ name: 'auth_user', synchronize: false })
export class DjangoUser extends DjangoAbstractUser {}
