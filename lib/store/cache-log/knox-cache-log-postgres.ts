import type { QueryRunner } from 'typeorm';
import { quotePath, type KnoxTablePath } from '../knox-token-table.js';
import { tokenTablePath } from '../migrations/knox-migration-sql.js';

/** The invalidation log's table name (in the token table's schema). */
export const KNOX_CACHE_LOG_TABLE = 'knox_cache_log';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;

/** Digests per log row, as the `NOTIFY` triggers pack them (a mass delete writes few rows). */
const DIGESTS_PER_ROW = 60;

/** The log table beside `tokenTable` (same schema). */
export function cacheLogPath(
  queryRunner: QueryRunner,
  tokenTable: string,
): KnoxTablePath {
  return {
    schema: tokenTablePath(queryRunner, tokenTable).schema,
    table: KNOX_CACHE_LOG_TABLE,
  };
}

function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * The log: `id` orders the rows as they were appended; `txid`, the writing transaction, lets a
 * reader find rows that commit after rows with a higher `id` (see the reader); `message` is
 * what a `NOTIFY` payload carries (`t:<digest>,…`, `u:<user id>`, `f`).
 */
function tableSql(log: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${log} (
       "id" bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       "txid" xid8 NOT NULL DEFAULT pg_current_xact_id(),
       "message" text NOT NULL,
       "created_at" timestamp with time zone NOT NULL DEFAULT now()
     )`,
    `CREATE INDEX IF NOT EXISTS "knox_cache_log_txid" ON ${log} ("txid")`,
  ];
}

/** The functions the log triggers call; each takes the log table (quoted) as `TG_ARGV[0]`. */
const FUNCTIONS = [
  `CREATE OR REPLACE FUNCTION knox_cache_log_deleted_tokens() RETURNS trigger
   LANGUAGE plpgsql AS $$
   BEGIN
     EXECUTE format(
       'INSERT INTO %s (message) SELECT ''t:'' || string_agg(digest, '','') FROM (
          SELECT digest, (row_number() OVER () - 1) / ${DIGESTS_PER_ROW} AS chunk FROM knox_old_rows
        ) AS numbered GROUP BY chunk', TG_ARGV[0]);
     RETURN NULL;
   END $$`,
  `CREATE OR REPLACE FUNCTION knox_cache_log_updated_token() RETURNS trigger
   LANGUAGE plpgsql AS $$
   BEGIN
     EXECUTE format('INSERT INTO %s (message) VALUES ($1)', TG_ARGV[0])
       USING 't:' || OLD.digest;
     RETURN NULL;
   END $$`,
  `CREATE OR REPLACE FUNCTION knox_cache_log_flush() RETURNS trigger
   LANGUAGE plpgsql AS $$
   BEGIN
     EXECUTE format('INSERT INTO %s (message) VALUES (''f'')', TG_ARGV[0]);
     RETURN NULL;
   END $$`,
  `CREATE OR REPLACE FUNCTION knox_cache_log_user() RETURNS trigger
   LANGUAGE plpgsql AS $$
   BEGIN
     EXECUTE format('INSERT INTO %s (message) VALUES ($1)', TG_ARGV[0])
       USING 'u:' || (to_jsonb(OLD) ->> TG_ARGV[1]);
     RETURN NULL;
   END $$`,
];

const TOKEN_TRIGGERS = [
  'knox_cache_log_delete',
  'knox_cache_log_update',
  'knox_cache_log_truncate',
];

/** The names of the log triggers on the user table of `tokenTable`. */
function userTriggerNames(tokenTable: string): [string, string] {
  const base = `knox_cache_${tokenTable.replace(/\./g, '_')}`.slice(0, 50);
  return [`${base}_log_upd`, `${base}_log_del`];
}

/** The triggers on the token table (`table`, quoted), each appending to the log literal `lg`. */
function tokenTableTriggers(table: string, lg: string): string[] {
  const [del, upd, trunc] = TOKEN_TRIGGERS;
  return [
    `CREATE OR REPLACE TRIGGER ${del} AFTER DELETE ON ${table}
       REFERENCING OLD TABLE AS knox_old_rows FOR EACH STATEMENT
       EXECUTE FUNCTION knox_cache_log_deleted_tokens(${lg})`,
    `CREATE OR REPLACE TRIGGER ${upd}
       AFTER UPDATE OF digest, user_id, expiry, retired_at, abilities ON ${table} FOR EACH ROW
       WHEN (OLD.digest IS DISTINCT FROM NEW.digest
             OR OLD.user_id IS DISTINCT FROM NEW.user_id
             OR OLD.retired_at IS DISTINCT FROM NEW.retired_at
             OR OLD.abilities IS DISTINCT FROM NEW.abilities
             OR (NEW.expiry IS NOT NULL AND (OLD.expiry IS NULL OR NEW.expiry < OLD.expiry)))
       EXECUTE FUNCTION knox_cache_log_updated_token(${lg})`,
    `CREATE OR REPLACE TRIGGER ${trunc} AFTER TRUNCATE ON ${table}
       FOR EACH STATEMENT EXECUTE FUNCTION knox_cache_log_flush(${lg})`,
  ];
}

/** The user table and its key column, as the token table's `user_id` foreign key names them. */
async function userTableOf(
  queryRunner: QueryRunner,
  table: string,
): Promise<{ table: string; column: string }> {
  const rows = (await queryRunner.query(
    `SELECT c.confrelid::regclass::text AS "table", a.attname AS "column"
       FROM pg_constraint c
       JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = c.confkey[1]
      WHERE c.contype = 'f' AND c.conrelid = $1::regclass
        AND c.conkey = ARRAY[(SELECT attnum FROM pg_attribute
                               WHERE attrelid = $1::regclass AND attname = 'user_id')]`,
    [table],
  )) as { table: string; column: string }[];
  if (rows.length !== 1) {
    throw new Error(
      `knox cache log: ${table}.user_id has no foreign key to a user table; create the token table first.`,
    );
  }
  return rows[0];
}

function checkTokenTable(tokenTable: string): void {
  if (!IDENTIFIER.test(tokenTable)) {
    throw new Error(`knox cache log: bad table name ${tokenTable}.`);
  }
}

/**
 * PostgreSQL: creates the invalidation log (if missing) and installs (or replaces) the triggers
 * that append to it: on the token table DELETE (statement level, digests packed), TRUNCATE and
 * the UPDATEs that matter (digest, owner, retired, abilities, an earlier expiry); on its user
 * table DELETE and any UPDATE that changes the row. Idempotent, under an advisory transaction
 * lock (run inside a transaction: the migration's, or the module's at boot).
 */
export async function installKnoxCacheLogPostgres(
  queryRunner: QueryRunner,
  tokenTable: string,
): Promise<void> {
  checkTokenTable(tokenTable);
  const table = quotePath(tokenTablePath(queryRunner, tokenTable));
  const log = quotePath(cacheLogPath(queryRunner, tokenTable));
  await queryRunner.query(
    `SELECT pg_advisory_xact_lock(hashtext('knox_cache_triggers'))`,
  );
  const user = await userTableOf(queryRunner, table);
  const lg = literal(log);
  const [userUpdate, userDelete] = userTriggerNames(tokenTable);
  const statements = [
    ...tableSql(log),
    ...FUNCTIONS,
    ...tokenTableTriggers(table, lg),
    `CREATE OR REPLACE TRIGGER ${userUpdate} AFTER UPDATE ON ${user.table} FOR EACH ROW
       WHEN (OLD.* IS DISTINCT FROM NEW.*)
       EXECUTE FUNCTION knox_cache_log_user(${lg}, ${literal(user.column)})`,
    `CREATE OR REPLACE TRIGGER ${userDelete} AFTER DELETE ON ${user.table} FOR EACH ROW
       EXECUTE FUNCTION knox_cache_log_user(${lg}, ${literal(user.column)})`,
  ];
  for (const sql of statements) {
    await queryRunner.query(sql);
  }
}

/** PostgreSQL: removes the log triggers of `tokenTable` and the log table. */
export async function dropKnoxCacheLogPostgres(
  queryRunner: QueryRunner,
  tokenTable: string,
): Promise<void> {
  checkTokenTable(tokenTable);
  const table = quotePath(tokenTablePath(queryRunner, tokenTable));
  const user = await userTableOf(queryRunner, table);
  for (const name of userTriggerNames(tokenTable)) {
    await queryRunner.query(`DROP TRIGGER IF EXISTS ${name} ON ${user.table}`);
  }
  for (const name of TOKEN_TRIGGERS) {
    await queryRunner.query(`DROP TRIGGER IF EXISTS ${name} ON ${table}`);
  }
  await queryRunner.query(
    `DROP TABLE IF EXISTS ${quotePath(cacheLogPath(queryRunner, tokenTable))}`,
  );
}

/** PostgreSQL: whether the log table and its five triggers are in place for `tokenTable`. */
export async function hasKnoxCacheLogPostgres(
  queryRunner: QueryRunner,
  tokenTable: string,
): Promise<boolean> {
  checkTokenTable(tokenTable);
  const table = quotePath(tokenTablePath(queryRunner, tokenTable));
  const log = quotePath(cacheLogPath(queryRunner, tokenTable));
  const [{ exists }] = (await queryRunner.query(
    `SELECT to_regclass($1) IS NOT NULL AS "exists"`,
    [log],
  )) as { exists: boolean }[];
  if (!exists) {
    return false;
  }
  const user = await userTableOf(queryRunner, table);
  const rows = (await queryRunner.query(
    `SELECT count(*)::int AS n FROM pg_trigger
      WHERE (tgrelid = $1::regclass AND tgname = ANY($3))
         OR (tgrelid = $2::regclass AND tgname = ANY($4))`,
    [table, user.table, TOKEN_TRIGGERS, userTriggerNames(tokenTable)],
  )) as { n: number }[];
  return rows[0]?.n === 5;
}
