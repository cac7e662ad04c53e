import { KnoxToken, type KnoxTokenKind } from './knox-token.entity.js';

/* The token table's rows as the raw statements of the store read them. */

/** The columns of the token table, as the store's statements name them. */
export const COLUMNS =
  'digest, token_key, id, user_id, created, expiry, ttl_ms, name, user_agent, ip, last_used_at, retired_at, abilities, last_used_ip, kind, max_expiry';

/** A timestamp column's value as a `Date` (`null` stays `null`). */
export function toDate(value: unknown): Date | null {
  if (value === null || value === undefined) {
    return null;
  }
  return value instanceof Date ? value : new Date(value as string);
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
    abilities: (row.abilities as string[] | null | undefined) ?? null,
    lastUsedIp: (row.last_used_ip as string | null | undefined) ?? null,
    kind: (row.kind as KnoxTokenKind | undefined) ?? 'session',
    maxExpiry: toDate(row.max_expiry),
  });
}
