import type { Type } from '@nestjs/common';
import type { MigrationInterface, QueryRunner } from 'typeorm';
import { KNOX_DEFAULT_TABLE_NAME, quotePath } from '../knox-token-table.js';
import { KNOX_MIGRATION_NAMES } from './knox-migrations.js';
import { tokenTablePath } from './knox-migration-sql.js';

/** Where {@link installKnoxCacheTriggers} installs the triggers, and what they notify. */
export interface KnoxCacheTriggerTarget {
  /** The token table (possibly `schema.table`), as given to `KnoxModule` as `tableName`. */
  tokenTable: string;
  /** The `NOTIFY` channel. */
  channel: string;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;

function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * Digests per notification: PostgreSQL takes payloads under 8000 bytes, and a digest is at most
 * 128 characters (the column's size) plus a comma.
 */
const DIGESTS_PER_NOTIFICATION = 60;

/**
 * The functions the triggers call: shared by every token table (each trigger passes its channel).
 * `t:<digest>,…` for tokens (packed, a statement deleting many rows sends few notifications),
 * `u:<user id>` for a user, `f` for a flush (TRUNCATE).
 */
const FUNCTIONS = [
  `CREATE OR REPLACE FUNCTION knox_cache_notify_deleted_tokens() RETURNS trigger
   LANGUAGE plpgsql AS $$
   DECLARE
     payload text;
   BEGIN
     FOR payload IN
       SELECT string_agg(digest, ',') FROM (
         SELECT digest, (row_number() OVER () - 1) / ${DIGESTS_PER_NOTIFICATION} AS chunk
           FROM knox_old_rows
       ) AS numbered GROUP BY chunk
     LOOP
       PERFORM pg_notify(TG_ARGV[0], 't:' || payload);
     END LOOP;
     RETURN NULL;
   END $$`,
  `CREATE OR REPLACE FUNCTION knox_cache_notify_updated_token() RETURNS trigger
   LANGUAGE plpgsql AS $$
   BEGIN
     PERFORM pg_notify(TG_ARGV[0], 't:' || OLD.digest);
     RETURN NULL;
   END $$`,
  `CREATE OR REPLACE FUNCTION knox_cache_notify_flush() RETURNS trigger
   LANGUAGE plpgsql AS $$
   BEGIN
     PERFORM pg_notify(TG_ARGV[0], 'f');
     RETURN NULL;
   END $$`,
  `CREATE OR REPLACE FUNCTION knox_cache_notify_user() RETURNS trigger
   LANGUAGE plpgsql AS $$
   BEGIN
     PERFORM pg_notify(TG_ARGV[0], 'u:' || (to_jsonb(OLD) ->> TG_ARGV[1]));
     RETURN NULL;
   END $$`,
];

/** The names of the triggers installed on the user table for `tokenTable`. */
function userTriggerNames(tokenTable: string): [string, string] {
  const base = `knox_cache_${tokenTable.replace(/\./g, '_')}`.slice(0, 50);
  return [`${base}_user_upd`, `${base}_user_del`];
}

/** The user table and its key column, as the token table's `user_id` foreign key names them. */
async function userTableOf(
  queryRunner: QueryRunner,
  quotedTokenTable: string,
): Promise<{ table: string; column: string }> {
  const rows = (await queryRunner.query(
    `SELECT c.confrelid::regclass::text AS "table", a.attname AS "column"
       FROM pg_constraint c
       JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = c.confkey[1]
      WHERE c.contype = 'f' AND c.conrelid = $1::regclass
        AND c.conkey = ARRAY[(SELECT attnum FROM pg_attribute
                               WHERE attrelid = $1::regclass AND attname = 'user_id')]`,
    [quotedTokenTable],
  )) as { table: string; column: string }[];
  if (rows.length !== 1) {
    throw new Error(
      `knox cache triggers: ${quotedTokenTable}.user_id has no foreign key to a user table; create the token table first.`,
    );
  }
  return rows[0];
}

/** The quoted token table and the user table its `user_id` foreign key points to. */
async function triggerTables(
  queryRunner: QueryRunner,
  tokenTable: string,
): Promise<{ table: string; user: { table: string; column: string } }> {
  const table = quotePath(tokenTablePath(queryRunner, tokenTable));
  return { table, user: await userTableOf(queryRunner, table) };
}

/** Refuses a table or channel name that would not be safe to splice into the statements. */
function checkTriggerTarget({ tokenTable, channel }: KnoxCacheTriggerTarget) {
  if (!IDENTIFIER.test(tokenTable) || !/^[a-z_][a-z0-9_]*$/.test(channel)) {
    throw new Error(
      `knox cache triggers: bad table ${tokenTable} or channel ${channel}.`,
    );
  }
}

/** The triggers on the token table (`table`, quoted), each notifying the channel literal `ch`. */
function tokenTableTriggers(table: string, ch: string): string[] {
  return [
    `DROP TRIGGER IF EXISTS knox_cache_delete ON ${table}`,
    `CREATE TRIGGER knox_cache_delete AFTER DELETE ON ${table}
         REFERENCING OLD TABLE AS knox_old_rows FOR EACH STATEMENT
         EXECUTE FUNCTION knox_cache_notify_deleted_tokens(${ch})`,
    `DROP TRIGGER IF EXISTS knox_cache_update ON ${table}`,
    `CREATE TRIGGER knox_cache_update AFTER UPDATE OF digest, user_id, expiry, retired_at
         ON ${table} FOR EACH ROW
         WHEN (OLD.digest IS DISTINCT FROM NEW.digest
               OR OLD.user_id IS DISTINCT FROM NEW.user_id
               OR OLD.retired_at IS DISTINCT FROM NEW.retired_at
               OR (NEW.expiry IS NOT NULL AND (OLD.expiry IS NULL OR NEW.expiry < OLD.expiry)))
         EXECUTE FUNCTION knox_cache_notify_updated_token(${ch})`,
    `DROP TRIGGER IF EXISTS knox_cache_truncate ON ${table}`,
    `CREATE TRIGGER knox_cache_truncate AFTER TRUNCATE ON ${table}
         FOR EACH STATEMENT EXECUTE FUNCTION knox_cache_notify_flush(${ch})`,
  ];
}

/** The triggers on the user table of `tokenTable`, each notifying the channel literal `ch`. */
function userTableTriggers(
  tokenTable: string,
  user: { table: string; column: string },
  ch: string,
): string[] {
  const [userUpdate, userDelete] = userTriggerNames(tokenTable);
  return [
    `DROP TRIGGER IF EXISTS ${userUpdate} ON ${user.table}`,
    `CREATE TRIGGER ${userUpdate} AFTER UPDATE ON ${user.table} FOR EACH ROW
         WHEN (OLD.* IS DISTINCT FROM NEW.*)
         EXECUTE FUNCTION knox_cache_notify_user(${ch}, ${literal(user.column)})`,
    `DROP TRIGGER IF EXISTS ${userDelete} ON ${user.table}`,
    `CREATE TRIGGER ${userDelete} AFTER DELETE ON ${user.table} FOR EACH ROW
         EXECUTE FUNCTION knox_cache_notify_user(${ch}, ${literal(user.column)})`,
  ];
}

/** Runs `work` in the caller's transaction, or in one of its own when there is none. */
async function inTransaction(
  queryRunner: QueryRunner,
  work: () => Promise<void>,
): Promise<void> {
  const ownTransaction = !queryRunner.isTransactionActive;
  if (ownTransaction) {
    await queryRunner.startTransaction();
  }
  try {
    await work();
    if (ownTransaction) {
      await queryRunner.commitTransaction();
    }
  } catch (error) {
    if (ownTransaction) {
      await queryRunner.rollbackTransaction();
    }
    throw error;
  }
}

/**
 * Installs (or replaces) the triggers that keep every instance's token cache honest: on the
 * token table, DELETE (any writer: the library, SQL, Django, `ON DELETE CASCADE`), TRUNCATE, and
 * an UPDATE that moves the digest or the owner, retires the token or brings its expiry closer;
 * on the user table its foreign key points to, DELETE and any UPDATE that changes the row (e.g.
 * an account deactivated in SQL). Each notifies `channel`. Idempotent; run in one transaction
 * under an advisory lock so that instances booting together do not collide.
 */
export async function installKnoxCacheTriggers(
  queryRunner: QueryRunner,
  target: KnoxCacheTriggerTarget,
): Promise<void> {
  checkTriggerTarget(target);
  const { tokenTable, channel } = target;
  const table = quotePath(tokenTablePath(queryRunner, tokenTable));
  await inTransaction(queryRunner, async () => {
    await queryRunner.query(
      `SELECT pg_advisory_xact_lock(hashtext('knox_cache_triggers'))`,
    );
    const user = await userTableOf(queryRunner, table);
    const ch = literal(channel);
    const statements = [
      ...FUNCTIONS,
      ...tokenTableTriggers(table, ch),
      ...userTableTriggers(tokenTable, user, ch),
    ];
    for (const sql of statements) {
      await queryRunner.query(sql);
    }
  });
}

/** Removes what {@link installKnoxCacheTriggers} installed on these tables. */
export async function dropKnoxCacheTriggers(
  queryRunner: QueryRunner,
  tokenTable: string,
): Promise<void> {
  const { table, user } = await triggerTables(queryRunner, tokenTable);
  for (const name of userTriggerNames(tokenTable)) {
    await queryRunner.query(`DROP TRIGGER IF EXISTS ${name} ON ${user.table}`);
  }
  for (const name of [
    'knox_cache_delete',
    'knox_cache_update',
    'knox_cache_truncate',
  ]) {
    await queryRunner.query(`DROP TRIGGER IF EXISTS ${name} ON ${table}`);
  }
}

/**
 * Whether the triggers are installed on `tokenTable` and its user table (what boot checks when
 * the cache listens on PostgreSQL and `installTriggers` is off).
 */
export async function hasKnoxCacheTriggers(
  queryRunner: QueryRunner,
  tokenTable: string,
): Promise<boolean> {
  const { table, user } = await triggerTables(queryRunner, tokenTable);
  const [userUpdate, userDelete] = userTriggerNames(tokenTable);
  const rows = (await queryRunner.query(
    `SELECT count(*)::int AS n FROM pg_trigger
      WHERE (tgrelid = $1::regclass AND tgname IN ('knox_cache_delete', 'knox_cache_update', 'knox_cache_truncate'))
         OR (tgrelid = $2::regclass AND tgname IN ($3, $4))`,
    [table, user.table, userUpdate, userDelete],
  )) as { n: number }[];
  return rows[0]?.n === 5;
}

/** Options of {@link knoxCacheMigrations}. */
export interface KnoxCacheMigrationsOptions {
  /**
   * The token table, as given to `KnoxModule` (`tableName`).
   * @default 'knox_authtoken'
   */
  tableName?: string;
  /**
   * The `NOTIFY` channel, as given in `cache.channel`.
   * @default 'knox_cache'
   */
  channel?: string;
}

/**
 * The migration that installs the cache's invalidation triggers (see docs/cache.md), for the
 * DataSource's `migrations` list after {@link knoxMigrations}' (its name,
 * `KnoxCacheTriggers9000000000003`, sorts after theirs). Needed when `cache` is on with the
 * `'postgres'` bus and the schema is not synchronized; boot fails with a message saying so when
 * the triggers are missing.
 *
 * @example
 * migrations: [...knoxMigrations(User), ...knoxCacheMigrations()],
 */
export function knoxCacheMigrations(
  options: KnoxCacheMigrationsOptions = {},
): Type<MigrationInterface>[] {
  const target: KnoxCacheTriggerTarget = {
    tokenTable: options.tableName ?? KNOX_DEFAULT_TABLE_NAME,
    channel: options.channel ?? 'knox_cache',
  };
  const name = KNOX_MIGRATION_NAMES.cacheTriggers;
  const migrationClass = class implements MigrationInterface {
    readonly name = name;
    up(queryRunner: QueryRunner): Promise<void> {
      return installKnoxCacheTriggers(queryRunner, target);
    }
    down(queryRunner: QueryRunner): Promise<void> {
      return dropKnoxCacheTriggers(queryRunner, target.tokenTable);
    }
  };
  Object.defineProperty(migrationClass, 'name', { value: 'KnoxCacheTriggers' });
  return [migrationClass];
}
