import { quotePath, type KnoxTablePath } from '../knox-token-table.js';
import type { KnoxMigrationSql } from './knox-migration-sql.js';

/**
 * `KnoxTokenAbilities9000000000004`, for both layouts (`'knox'` and `'django'`): the
 * `abilities` column (`text[]`, `NULL` = every ability, so every existing row and every row
 * django-rest-knox inserts keeps full access) and `last_used_ip` (written with
 * `last_used_at`). Adds nullable columns only: no row is rewritten, and PostgreSQL adds them
 * without a table rewrite. `down` drops exactly those two columns.
 */
export function tokenAbilitiesSql(token: KnoxTablePath): KnoxMigrationSql {
  const table = quotePath(token);
  return {
    up: [
      `ALTER TABLE ${table}
  ADD COLUMN "abilities" text[],
  ADD COLUMN "last_used_ip" character varying(45)`,
    ],
    down: [
      `ALTER TABLE ${table}
  DROP COLUMN "abilities",
  DROP COLUMN "last_used_ip"`,
    ],
  };
}
