import type { Type } from '@nestjs/common';
import type { MigrationInterface, QueryRunner } from 'typeorm';
import { quotePath } from '../knox-token-table.js';
import { tokenTablePath } from './knox-migration-sql.js';
import type { KnoxCacheTriggerTarget } from './knox-cache-migrations.js';

/**
 * The name TypeORM records for this migration. Fixed forever, like `KNOX_MIGRATION_NAMES`' (kept
 * here, beside the migration, so that the shipped migration files stay as they shipped).
 */
export const KNOX_CACHE_ABILITIES_MIGRATION = 'KnoxCacheAbilities9000000000005';

/** The trigger's name on the token table. */
const TRIGGER = 'knox_cache_abilities';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;
const CHANNEL = /^[a-z_][a-z0-9_]*$/;

/**
 * `KnoxCacheAbilities9000000000005`: the cache also hears of a token whose `abilities` changed
 * (narrowed in SQL by an admin, say), which the shipped `KnoxCacheTriggers9000000000003` does not
 * watch (the column came later, with `KnoxTokenAbilities9000000000004`). One more row trigger on
 * the token table, calling the function that migration installed, so it needs both before it.
 * `down` drops exactly that trigger.
 */
export function cacheAbilitiesSql(
  queryRunner: QueryRunner,
  target: KnoxCacheTriggerTarget,
): { up: string[]; down: string[] } {
  const { tokenTable, channel } = target;
  if (!IDENTIFIER.test(tokenTable) || !CHANNEL.test(channel)) {
    throw new Error(
      `knox cache triggers: bad table ${tokenTable} or channel ${channel}.`,
    );
  }
  const table = quotePath(tokenTablePath(queryRunner, tokenTable));
  return {
    up: [
      `CREATE OR REPLACE TRIGGER ${TRIGGER} AFTER UPDATE OF abilities ON ${table} FOR EACH ROW
         WHEN (OLD.abilities IS DISTINCT FROM NEW.abilities)
         EXECUTE FUNCTION knox_cache_notify_updated_token('${channel}')`,
    ],
    down: [`DROP TRIGGER IF EXISTS ${TRIGGER} ON ${table}`],
  };
}

/**
 * Installs (or replaces) the trigger that notifies the cache when a token's `abilities` change:
 * one `CREATE OR REPLACE TRIGGER` (PostgreSQL 14 or later), atomic, so instances booting together
 * need no lock for it.
 * {@link installKnoxCacheTriggers} must have run first (this trigger calls its function), and
 * the table must have its `abilities` column. `knoxCacheMigrations()` runs both, and so does the
 * module at boot with `installTriggers`; call both yourself only if you install the triggers from
 * a migration of your own.
 */
export async function installKnoxCacheAbilitiesTrigger(
  queryRunner: QueryRunner,
  target: KnoxCacheTriggerTarget,
): Promise<void> {
  for (const sql of cacheAbilitiesSql(queryRunner, target).up) {
    await queryRunner.query(sql);
  }
}

/** Whether {@link installKnoxCacheAbilitiesTrigger}'s trigger is on `tokenTable`. */
export async function hasKnoxCacheAbilitiesTrigger(
  queryRunner: QueryRunner,
  tokenTable: string,
): Promise<boolean> {
  const rows = (await queryRunner.query(
    `SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = $1::regclass AND tgname = $2`,
    [quotePath(tokenTablePath(queryRunner, tokenTable)), TRIGGER],
  )) as { n: number }[];
  return rows[0]?.n === 1;
}

/** The migration class of {@link cacheAbilitiesSql}. */
export function cacheAbilitiesMigration(
  target: KnoxCacheTriggerTarget,
): Type<MigrationInterface> {
  const migrationClass = class implements MigrationInterface {
    readonly name = KNOX_CACHE_ABILITIES_MIGRATION;
    async up(queryRunner: QueryRunner): Promise<void> {
      await installKnoxCacheAbilitiesTrigger(queryRunner, target);
    }
    async down(queryRunner: QueryRunner): Promise<void> {
      for (const sql of cacheAbilitiesSql(queryRunner, target).down) {
        await queryRunner.query(sql);
      }
    }
  };
  Object.defineProperty(migrationClass, 'name', {
    value: 'KnoxCacheAbilities',
  });
  return migrationClass;
}
