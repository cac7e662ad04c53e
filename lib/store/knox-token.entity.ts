import {
  Column,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryColumn,
} from 'typeorm';
import type { Type } from '@nestjs/common';

/**
 * A token as stored: never the plaintext, only its SHA-512 digest. The layout matches
 * django-rest-knox's `knox_authtoken` (`digest`, `token_key`, `user_id`, `created`, `expiry`), so
 * a table filled by a Django deployment keeps working; the other columns are this module's.
 */
export class KnoxToken<User = any> {
  /** SHA-512 hex digest of the whole token: the primary key. */
  digest: string;
  /** The first 15 characters of the token (prefix included), indexed as knox does. */
  tokenKey: string;
  /** Public, non-secret id, for listing and revoking. */
  id: string;
  /** The owner, when loaded. */
  user?: User;
  /** When the token was issued. */
  created: Date;
  /** When the token stops working; `null` never. */
  expiry: Date | null;
  /** The TTL the token was issued with, in ms, used by auto refresh; `null` means the default. */
  ttl: number | null;
  /** The name the client gave the token at login. */
  name: string | null;
  /** The user agent of the login request. */
  userAgent: string | null;
  /** The client IP of the login request. */
  ip: string | null;
  /**
   * When the token was last used: set at login, then updated at most once per
   * `lastUsedUpdateInterval` (`null` for a row written by django-rest-knox and not used since).
   */
  lastUsedAt: Date | null;
  /**
   * When the token was replaced by `rotate`; it keeps working until its expiry (the end of the
   * rotation grace period) and is never refreshed. `null` for a token in use.
   */
  retiredAt: Date | null;

  /** Never serializes the digest. */
  toJSON(): Omit<KnoxToken<User>, 'digest' | 'toJSON' | 'user'> {
    const { digest: _digest, user: _user, ...rest } = this;
    return rest as Omit<KnoxToken<User>, 'digest' | 'toJSON' | 'user'>;
  }
}

const bigintAsNumber = {
  to: (value: number | null | undefined) => value,
  from: (value: string | number | null) =>
    value === null || value === undefined ? null : Number(value),
};

const entities = new Map<string, Type<KnoxToken>>();
const owners = new WeakMap<Type<KnoxToken>, Type<unknown>>();

/**
 * The TypeORM entity of the token table, with its foreign key to `userEntity`. Calls with the
 * same arguments return the same class, so an app that lists its entities by hand can add it:
 *
 * @example
 * TypeOrmModule.forRoot({ entities: [User, knoxTokenEntity(User)], ... })
 */
export function knoxTokenEntity(
  userEntity: Type<unknown>,
  tableName = 'knox_authtoken',
): Type<KnoxToken> {
  const key = `${tableName}\u0000${userEntity.name}`;
  const cached = entities.get(key);
  if (cached && owners.get(cached) === userEntity) {
    return cached;
  }

  // A class made per user entity: TypeORM builds decorator entities and EntitySchemas apart,
  // so a schema could not reference the app's (decorated) user entity.
  @Entity({ name: tableName })
  @Index(`${tableName}_token_key_idx`, ['tokenKey'])
  @Index(`${tableName}_expiry_idx`, ['expiry'])
  @Index(`${tableName}_user_id_idx`, ['user'])
  class KnoxTokenEntity extends KnoxToken {
    @PrimaryColumn({ type: 'varchar', length: 128 })
    declare digest: string;

    @Column({ name: 'token_key', type: 'varchar', length: 25 })
    declare tokenKey: string;

    @Column({
      type: 'uuid',
      unique: true,
      default: () => 'gen_random_uuid()',
    })
    declare id: string;

    @ManyToOne(() => userEntity, { onDelete: 'CASCADE', nullable: false })
    @JoinColumn({ name: 'user_id' })
    declare user?: unknown;

    @Column({ type: 'timestamptz' })
    declare created: Date;

    @Column({ type: 'timestamptz', nullable: true })
    declare expiry: Date | null;

    @Column({
      name: 'ttl_ms',
      type: 'bigint',
      nullable: true,
      transformer: bigintAsNumber,
    })
    declare ttl: number | null;

    @Column({ type: 'varchar', length: 200, nullable: true })
    declare name: string | null;

    @Column({
      name: 'user_agent',
      type: 'varchar',
      length: 512,
      nullable: true,
    })
    declare userAgent: string | null;

    @Column({ type: 'varchar', length: 45, nullable: true })
    declare ip: string | null;

    @Column({ name: 'last_used_at', type: 'timestamptz', nullable: true })
    declare lastUsedAt: Date | null;

    @Column({ name: 'retired_at', type: 'timestamptz', nullable: true })
    declare retiredAt: Date | null;
  }
  Object.defineProperty(KnoxTokenEntity, 'name', { value: 'KnoxToken' });

  entities.set(key, KnoxTokenEntity);
  owners.set(KnoxTokenEntity, userEntity);
  return KnoxTokenEntity;
}
