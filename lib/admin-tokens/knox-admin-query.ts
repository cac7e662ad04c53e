import { BadRequestException } from '@nestjs/common';
import {
  KNOX_TOKEN_KINDS,
  type KnoxTokenKind,
} from '../store/knox-token.entity.js';
import type {
  KnoxTokenSearchAfter,
  KnoxTokenSortKey,
} from '../store/knox-token-search.js';

/** The most tokens one page of the admin's list holds. */
export const KNOX_ADMIN_MAX_LIMIT = 200;

/** A page's size when the query gives none. */
export const KNOX_ADMIN_DEFAULT_LIMIT = 50;

/** The longest `search` text. */
const MAX_SEARCH_LENGTH = 200;

const SORTS: readonly KnoxTokenSortKey[] = [
  '-created',
  'created',
  '-lastUsedAt',
  'lastUsedAt',
  '-expiry',
  'expiry',
];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * What to list of every user's tokens (`GET {path}/admin/tokens`, `KnoxTokenService.findTokens`).
 * Every filter is optional; they combine with AND.
 */
export interface KnoxAdminTokenQuery {
  /** Only this user's tokens (the user's primary key). */
  userId?: unknown;
  /**
   * Text found (case-insensitive) in the token's name, IP (of login and of last use), user
   * agent, or the user's label columns (`admin.searchUserColumns`). A whole plaintext token, or
   * a token's public id, finds that token.
   */
  search?: string;
  /** Sessions or personal access tokens only. */
  kind?: KnoxTokenKind;
  /** `true`: tokens that still work (not expired); `false`: expired ones not pruned yet. */
  active?: boolean;
  /**
   * The order: `-created` (newest first, the default), `created`, `-lastUsedAt`, `lastUsedAt`,
   * `-expiry`, `expiry` (a token that never expires sorts as the latest expiry).
   */
  sort?: KnoxTokenSortKey;
  /** Tokens per page, 1 to 200. @default 50 */
  limit?: number;
  /** The `nextCursor` of the previous page, for the next one. */
  cursor?: string | null;
}

/** A query checked, its cursor decoded. */
export interface KnoxCheckedAdminQuery {
  userId?: unknown;
  search?: string;
  kind?: KnoxTokenKind;
  active?: boolean;
  sort: KnoxTokenSortKey;
  limit: number;
  after?: KnoxTokenSearchAfter;
}

/** The query parameters `GET {path}/admin/tokens` takes. */
const PARAMETERS = [
  'userId',
  'search',
  'kind',
  'active',
  'sort',
  'limit',
  'cursor',
];

const bad = (message: string) => new BadRequestException(message);

/**
 * The query string of `GET {path}/admin/tokens` as a {@link KnoxAdminTokenQuery}: 400 with a
 * message for an unknown parameter, a repeated one, or a value that is not one it takes.
 * `userId` stays a string here (the service reads it by the user key's type).
 */
export function readAdminQueryString(
  raw: Record<string, unknown>,
): KnoxAdminTokenQuery {
  const query: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(raw ?? {})) {
    if (!PARAMETERS.includes(name)) {
      throw bad(
        `Unknown query parameter '${name}'; the list takes ${PARAMETERS.join(', ')}.`,
      );
    }
    if (typeof value !== 'string') {
      throw bad(`Query parameter '${name}' must be given once.`);
    }
    query[name] = value;
  }
  const { active, limit } = query;
  if (active !== undefined && active !== 'true' && active !== 'false') {
    throw bad(`'active' must be true or false; got '${String(active)}'.`);
  }
  if (limit !== undefined && !/^\d{1,4}$/.test(limit as string)) {
    throw bad(
      `'limit' must be a whole number from 1 to ${KNOX_ADMIN_MAX_LIMIT}; got '${String(limit)}'.`,
    );
  }
  return {
    ...query,
    active: active === undefined ? undefined : active === 'true',
    limit: limit === undefined ? undefined : Number(limit),
  } as KnoxAdminTokenQuery;
}

/** Checks a query (from HTTP or a script); 400 with a message for a value it does not take. */
export function checkAdminQuery(
  query: KnoxAdminTokenQuery = {},
): KnoxCheckedAdminQuery {
  const { search, kind, active, limit = KNOX_ADMIN_DEFAULT_LIMIT } = query;
  if (search !== undefined && typeof search !== 'string') {
    throw bad("'search' must be a string.");
  }
  if (search !== undefined && search.length > MAX_SEARCH_LENGTH) {
    throw bad(`'search' must be at most ${MAX_SEARCH_LENGTH} characters.`);
  }
  if (kind !== undefined && !KNOX_TOKEN_KINDS.includes(kind)) {
    throw bad(
      `'kind' must be ${KNOX_TOKEN_KINDS.map((k) => `'${k}'`).join(' or ')}; got '${String(kind)}'.`,
    );
  }
  if (active !== undefined && typeof active !== 'boolean') {
    throw bad("'active' must be true or false.");
  }
  if (!Number.isInteger(limit) || limit < 1 || limit > KNOX_ADMIN_MAX_LIMIT) {
    throw bad(
      `'limit' must be a whole number from 1 to ${KNOX_ADMIN_MAX_LIMIT}; got ${String(limit)}.`,
    );
  }
  const cursor =
    query.cursor === undefined || query.cursor === null || query.cursor === ''
      ? undefined
      : decodeCursor(query.cursor);
  const sort = checkSort(query.sort, cursor?.sort);
  return {
    userId: query.userId,
    search: search === '' ? undefined : search,
    kind,
    active,
    sort,
    limit,
    after: cursor && { id: cursor.id, key: cursor.key },
  };
}

function checkSort(
  sort: unknown,
  cursorSort: KnoxTokenSortKey | undefined,
): KnoxTokenSortKey {
  if (sort !== undefined && !SORTS.includes(sort as KnoxTokenSortKey)) {
    throw bad(
      `'sort' must be one of ${SORTS.join(', ')}; got '${String(sort)}'.`,
    );
  }
  if (cursorSort !== undefined && sort !== undefined && sort !== cursorSort) {
    throw bad(
      `'cursor' continues a list sorted by ${cursorSort}, not ${String(sort)}; start again without it.`,
    );
  }
  return (sort ?? cursorSort ?? '-created') as KnoxTokenSortKey;
}

/** The `nextCursor` after `id` whose sort key is `key`: opaque to clients. */
export function encodeCursor(
  sort: KnoxTokenSortKey,
  id: string,
  key: Date,
): string {
  return Buffer.from(
    JSON.stringify({ s: sort, i: id, k: key.toISOString() }),
  ).toString('base64url');
}

function decodeCursor(cursor: unknown): {
  sort: KnoxTokenSortKey;
  id: string;
  key: Date;
} {
  const invalid = bad(
    "'cursor' is not a cursor this list gave (pass nextCursor as it came).",
  );
  if (typeof cursor !== 'string' || cursor.length > 300) {
    throw invalid;
  }
  let parsed: { s?: unknown; i?: unknown; k?: unknown };
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid;
  }
  const key = new Date(typeof parsed?.k === 'string' ? parsed.k : NaN);
  if (
    !SORTS.includes(parsed.s as KnoxTokenSortKey) ||
    typeof parsed.i !== 'string' ||
    !UUID.test(parsed.i) ||
    Number.isNaN(key.getTime())
  ) {
    throw invalid;
  }
  return { sort: parsed.s as KnoxTokenSortKey, id: parsed.i, key };
}

/** Whether `value` is a token's public id (a UUID). */
export function isTokenId(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}

/**
 * A user id from a URL or query string, as the user key's database type takes it: 400 for a
 * value that type cannot hold (so that a typo never reaches the database as an error).
 */
export function readUserId(raw: unknown, keyType: string): unknown {
  if (typeof raw !== 'string' || raw === '' || raw.length > 200) {
    throw bad("'userId' must be a user's id.");
  }
  if (/int|numeric|decimal|number/i.test(keyType)) {
    if (!/^-?\d{1,19}$/.test(raw)) {
      throw bad(`'userId' must be a whole number; got '${raw}'.`);
    }
    return Number.isSafeInteger(Number(raw)) ? Number(raw) : raw;
  }
  if (/uuid/i.test(keyType) && !UUID.test(raw)) {
    throw bad(`'userId' must be a UUID; got '${raw}'.`);
  }
  return raw;
}
