import { KnoxToken, type KnoxTokenKind } from './knox-token.entity.js';

/* The token table's rows as the raw statements of the store read them. */

/** The columns of the token table, as the store's statements name them. */
export const COLUMNS =
  'digest, token_key, id, user_id, created, expiry, ttl_ms, name, user_agent, ip, last_used_at, retired_at, abilities, last_used_ip, kind, max_expiry';

/** A datetime text without a zone, as SQLite stores TypeORM's dates: UTC. */
const ZONELESS_DATETIME = /^\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?$/;

/**
 * A timestamp column's value as a `Date` (`null` stays `null`). pg and mysql2 give `Date`s;
 * SQLite gives TypeORM's datetime text, in UTC (as a DBA's `'2000-01-01 00:00:00'` is read).
 */
export function toDate(value: unknown): Date | null {
  if (value === null || value === undefined) {
    return null;
  }
  if (value instanceof Date) {
    return value;
  }
  const text = String(value);
  return new Date(
    ZONELESS_DATETIME.test(text) ? `${text.replace(' ', 'T')}Z` : text,
  );
}

/** The abilities column: an array on PostgreSQL, JSON text elsewhere. */
function toAbilities(value: unknown): string[] | null {
  if (value === null || value === undefined) {
    return null;
  }
  return typeof value === 'string'
    ? (JSON.parse(value) as string[] | null)
    : (value as string[]);
}

/** A token from a raw row (its user not loaded). */
export function toToken(row: Record<string, unknown>): KnoxToken {
  return Object.assign(new KnoxToken(), {
    digest: row.digest as string,
    tokenKey: row.token_key as string,
    id: row.id as string,
    created: toDate(row.created) as Date,
    expiry: toDate(row.expiry),
    ttl:
      row.ttl_ms === null || row.ttl_ms === undefined
        ? null
        : Number(row.ttl_ms),
    name: (row.name as string | null) ?? null,
    userAgent: (row.user_agent as string | null) ?? null,
    ip: (row.ip as string | null) ?? null,
    lastUsedAt: toDate(row.last_used_at),
    retiredAt: toDate(row.retired_at),
    abilities: toAbilities(row.abilities),
    lastUsedIp: (row.last_used_ip as string | null | undefined) ?? null,
    kind: (row.kind as KnoxTokenKind | undefined) ?? 'session',
    maxExpiry: toDate(row.max_expiry),
  });
}
