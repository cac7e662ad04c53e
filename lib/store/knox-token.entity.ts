import {
  Column,
  type ColumnOptions,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryColumn,
  Unique,
} from 'typeorm';
import type { Type } from '@nestjs/common';
import {
  KNOX_DEFAULT_TABLE_NAME,
  declaredUserRef,
  knoxTableNames,
  type KnoxTableNames,
  type KnoxTableSchema,
} from './knox-token-table.js';
import { grants } from '../abilities/knox-abilities.js';
import { IP_COLUMN_LENGTH, USER_AGENT_LENGTH } from '../knox.constants.js';
import {
  KNOX_TOKEN_ENTITY_MARK,
  installKnoxEntityDialectHook,
} from './knox-entity-dialect.js';

/** What a token is: a session (a login, or the app's) or a personal access token. */
export type KnoxTokenKind = 'session' | 'personal-access-token';

/** Every {@link KnoxTokenKind}. */
export const KNOX_TOKEN_KINDS: readonly KnoxTokenKind[] = [
  'session',
  'personal-access-token',
];

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
  /**
   * What the token may do (see docs/abilities.md): a list of abilities, `'*'` for all and
   * `ns:*` for a namespace, or `null` for every ability (tokens issued without abilities, and
   * rows django-rest-knox wrote). Checked by `@KnoxAbilities` and {@link can}.
   */
  abilities: string[] | null;
  /**
   * The client IP of the last use, written together with `lastUsedAt` (same write, same
   * interval); `null` until then for rows written before this column existed.
   */
  lastUsedIp: string | null;
  /**
   * What the token is: `'session'` (a login, a token the app issued, their rotations) or
   * `'personal-access-token'` (`POST {path}/tokens`). Rows written before
   * `KnoxTokenKind9000000000006`, and by django-rest-knox, are sessions.
   */
  kind: KnoxTokenKind;
  /**
   * The latest expiry the token may ever reach: refresh, auto refresh and rotation stop there,
   * and a rotation hands it to the successor. Set for personal access tokens (`created +
   * personalAccessTokens.maxTtl`, earlier for one minted through `createAbility`) and by
   * `create({ maxExpiry })`; `null`: no cap of its own (rows written before the column existed,
   * and django-rest-knox's).
   */
  maxExpiry: Date | null;

  /**
   * Whether the token holds `ability`: `'*'` and `null` hold every ability, `ns:*` every
   * ability that starts with `ns:`.
   *
   * @example
   * if (!request.auth.can('posts:delete')) throw new ForbiddenException();
   */
  can(ability: string): boolean {
    return grants(this.abilities, ability);
  }

  /** Never serializes the digest. */
  toJSON(): Omit<KnoxToken<User>, 'digest' | 'toJSON' | 'user' | 'can'> {
    const { digest: _digest, user: _user, ...rest } = this;
    return rest as Omit<KnoxToken<User>, 'digest' | 'toJSON' | 'user' | 'can'>;
  }
}

const bigintAsNumber = {
  to: (value: number | null | undefined) => value,
  from: (value: string | number | null) =>
    value === null || value === undefined ? null : Number(value),
};

const entities = new Map<string, Type<KnoxToken>>();
const owners = new WeakMap<Type<KnoxToken>, Type<unknown>>();

/** Options of {@link knoxTokenEntity}. */
export interface KnoxTokenEntityOptions {
  /**
   * The token table, optionally schema-qualified (`auth.knox_authtoken`).
   * @default 'knox_authtoken'
   */
  tableName?: string;
  /**
   * The table's layout: `'knox'` for a table nestjs-knox creates, `'django'` for a table
   * django-rest-knox created and the {@link knoxMigrations} takeover completed (Django's foreign
   * key and index names, kept as they are). See {@link KnoxTableSchema}.
   * @default 'knox'
   */
  schema?: KnoxTableSchema;
}

/**
 * The TypeORM entity of the token table, with its foreign key to `userEntity`. Calls with the
 * same arguments return the same class, so an app that lists its entities by hand can add it.
 * Pass the same `tableName` / `schema` as to `KnoxModule.forRoot` and {@link knoxMigrations}.
 *
 * The entity matches what the shipped migrations create, constraint and index names included,
 * so `migration:generate` / `schema:log` find nothing to change after them.
 *
 * @example
 * TypeOrmModule.forRoot({ entities: [User, knoxTokenEntity(User)], ... })
 * @example
 * knoxTokenEntity(DjangoUser, { schema: 'django' })
 */
export function knoxTokenEntity(
  userEntity: Type<unknown>,
  options: string | KnoxTokenEntityOptions = {},
): Type<KnoxToken> {
  const { tableName = KNOX_DEFAULT_TABLE_NAME, schema = 'knox' } =
    typeof options === 'string' ? { tableName: options } : options;
  const key = `${tableName}\u0000${schema}\u0000${userEntity.name}`;
  const cached = entities.get(key);
  if (cached && owners.get(cached) === userEntity) {
    return cached;
  }
  // The columns take the driver's types when a data source builds its metadata.
  installKnoxEntityDialectHook();
  const entity = defineTokenEntity(userEntity, tableName, schema);
  entities.set(key, entity);
  owners.set(entity, userEntity);
  return entity;
}

/** The property each indexed column maps to. */
const INDEXED_PROPERTIES = {
  digest: 'digest',
  token_key: 'tokenKey',
  user_id: 'user',
  expiry: 'expiry',
} as const;

/**
 * The columns after the foreign key, in table order: plain values, with no constraint of their
 * own (the order is the one `synchronize` creates them in).
 */
const VALUE_COLUMNS: [keyof KnoxToken, ColumnOptions][] = [
  ['created', { type: 'timestamptz' }],
  ['expiry', { type: 'timestamptz', nullable: true }],
  [
    'ttl',
    {
      name: 'ttl_ms',
      type: 'bigint',
      nullable: true,
      transformer: bigintAsNumber,
    },
  ],
  ['name', { type: 'varchar', length: 200, nullable: true }],
  [
    'userAgent',
    {
      name: 'user_agent',
      type: 'varchar',
      length: USER_AGENT_LENGTH,
      nullable: true,
    },
  ],
  ['ip', { type: 'varchar', length: IP_COLUMN_LENGTH, nullable: true }],
  ['lastUsedAt', { name: 'last_used_at', type: 'timestamptz', nullable: true }],
  ['retiredAt', { name: 'retired_at', type: 'timestamptz', nullable: true }],
  // Added by KnoxTokenAbilities9000000000004.
  ['abilities', { type: 'text', array: true, nullable: true }],
  [
    'lastUsedIp',
    {
      name: 'last_used_ip',
      type: 'varchar',
      length: IP_COLUMN_LENGTH,
      nullable: true,
    },
  ],
  // Added by KnoxTokenKind9000000000006.
  ['kind', { type: 'varchar', length: 32, default: 'session' }],
  // Added by KnoxTokenExpiryCap9000000000007.
  ['maxExpiry', { name: 'max_expiry', type: 'timestamptz', nullable: true }],
];

/**
 * A new entity class for the token table of `userEntity`, with the constraint and index names
 * of the layout `schema`. The decorators are applied in the order a decorated class applies
 * them: the properties top to bottom, then the class.
 */
function defineTokenEntity(
  userEntity: Type<unknown>,
  tableName: string,
  schema: KnoxTableSchema,
): Type<KnoxToken> {
  const names = knoxTableNames(
    tableName,
    schema,
    schema === 'django' ? declaredUserRef(userEntity) : undefined,
  );
  // A class made per user entity: TypeORM builds decorator entities and EntitySchemas apart,
  // so a schema could not reference the app's (decorated) user entity.
  class KnoxTokenEntity extends KnoxToken {}
  declareKeyColumns(KnoxTokenEntity.prototype, names);
  declareUserRelation(KnoxTokenEntity.prototype, userEntity, names, schema);
  for (const [property, column] of VALUE_COLUMNS) {
    Column(column)(KnoxTokenEntity.prototype, property);
  }
  Unique(names.idUnique, ['id'])(KnoxTokenEntity);
  Entity({ name: tableName })(KnoxTokenEntity);
  for (const index of names.indexes) {
    Index(index.name, [INDEXED_PROPERTIES[index.column]])(KnoxTokenEntity);
  }
  Object.defineProperty(KnoxTokenEntity, 'name', { value: 'KnoxToken' });
  Object.defineProperty(KnoxTokenEntity, KNOX_TOKEN_ENTITY_MARK, {
    value: true,
  });
  return KnoxTokenEntity;
}

/** `digest` (the primary key), `token_key` and the public `id`. */
function declareKeyColumns(prototype: object, names: KnoxTableNames): void {
  PrimaryColumn({
    type: 'varchar',
    length: 128,
    primaryKeyConstraintName: names.primaryKey,
  })(prototype, 'digest');
  Column({ name: 'token_key', type: 'varchar', length: 25 })(
    prototype,
    'tokenKey',
  );
  // The app always sets the id (randomUUID()); the database default is for rows other writers
  // insert (django-rest-knox on a shared table), which must get an id too. TypeORM reads a
  // `gen_random_uuid()` default back as `generated: 'uuid'` (and then skips comparing defaults),
  // so declaring both keeps its diff empty, and `default` makes `synchronize` write
  // gen_random_uuid() (core PostgreSQL >= 13) instead of uuid-ossp's uuid_generate_v4().
  Column({
    type: 'uuid',
    generated: 'uuid',
    default: () => 'gen_random_uuid()',
  })(prototype, 'id');
}

/**
 * `user_id`, the foreign key to the user table: `ON DELETE CASCADE` in nestjs-knox's layout,
 * Django's deferred constraint without cascade in Django's.
 */
function declareUserRelation(
  prototype: object,
  userEntity: Type<unknown>,
  names: KnoxTableNames,
  schema: KnoxTableSchema,
): void {
  const django = schema === 'django';
  JoinColumn({
    name: 'user_id',
    foreignKeyConstraintName: names.foreignKey,
  })(prototype, 'user');
  ManyToOne(() => userEntity, {
    nullable: false,
    onDelete: django ? 'NO ACTION' : 'CASCADE',
    ...(django ? { deferrable: 'INITIALLY DEFERRED' as const } : {}),
  })(prototype, 'user');
}
