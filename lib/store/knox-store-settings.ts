import type { Type } from '@nestjs/common';
import type { KnoxTableSchema } from './knox-token-table.js';

/**
 * What the store needs to know of the token table: the user entity it points to, its name and
 * its layout. {@link KnoxModuleExtras} extends it with the module's own settings.
 */
export interface KnoxStoreSettings<User = any> {
  /**
   * The app's TypeORM user entity. The token table gets a foreign key `user_id` to its primary
   * key, with `ON DELETE CASCADE` (with `schema: 'django'`, Django's own foreign key: no cascade).
   * The user type of the hooks (`validateUser`, `isUserActive`, `getTokenTtl`, …) is inferred
   * from it.
   */
  userEntity: Type<User>;

  /**
   * The token table.
   * @default 'knox_authtoken'
   */
  tableName?: string;

  /**
   * The token table's layout. `'knox'`: the table the shipped migration
   * (`knoxMigrations(User)`) or `synchronize` creates. `'django'`: a django-rest-knox table
   * completed by the takeover migration (`knoxMigrations(User, { schema: 'django' })`); the
   * entity then declares Django's foreign key (no cascade, deferred) and Django's index names,
   * so TypeORM's diff leaves Django's schema alone. Use the same value for `knoxMigrations` and
   * `knoxTokenEntity`.
   * @default 'knox'
   */
  schema?: KnoxTableSchema;
}
