import { Injectable } from '@nestjs/common';
import type { DataSource, SelectQueryBuilder } from 'typeorm';
import { knoxDialectOf } from './knox-dialect.js';
import type { KnoxToken, KnoxTokenKind } from './knox-token.entity.js';
import { KnoxTokenStore } from './knox-token.store.js';

/** What the admin's list is ordered by; `-` first is newest / latest first. */
export type KnoxTokenSortKey =
  'created' | '-created' | 'lastUsedAt' | '-lastUsedAt' | 'expiry' | '-expiry';

/** Where a page starts: after the token `id`, whose sort key was `key` when it was listed. */
export interface KnoxTokenSearchAfter {
  id: string;
  /** The sort key of `id`, used only when that token is gone by the time the next page is read. */
  key: Date;
}

/** One query of {@link KnoxTokenSearch.find}: every user's tokens, filtered, one page. */
export interface KnoxTokenSearchFilter {
  /** Only this user's tokens. */
  userId?: unknown;
  /**
   * Lowercase text to find (substring, case-insensitive) in the name, IPs, user agent and the
   * user's `userColumns`; `digest` and `id` also match that token exactly.
   */
  search?: { text: string; digest?: string; id?: string };
  kind?: KnoxTokenKind;
  /** `true`: tokens that still work at `now` (not expired); `false`: expired ones. */
  active?: boolean;
  now: Date;
  sort: KnoxTokenSortKey;
  after?: KnoxTokenSearchAfter;
  /** Rows to return (the caller asks for one more than a page to know whether there is more). */
  limit: number;
  /** The user entity's properties to search (string columns). */
  userColumns: readonly string[];
}

/** The sort key of a never-expiring token when sorting by expiry: later than any expiry. */
const NEVER = new Date('9999-12-31T00:00:00.000Z');

/** `token.<column>` expressions of the sort keys: never null, so that keyset comparisons hold. */
const SORT_KEYS: Record<string, string> = {
  created: 'token.created',
  lastUsedAt: 'COALESCE(token.last_used_at, token.created)',
  expiry: 'COALESCE(token.expiry, :never)',
};

/**
 * SQLite's own `LOWER()` folds ASCII letters only ('Émile' stays 'Émile'), and its `LIKE` is
 * case-insensitive for ASCII only: a search for 'émile' missed 'Émile'. On SQLite the search
 * lowers with this function instead, JavaScript's `toLowerCase()` (as the search text is lowered),
 * registered on each better-sqlite3 connection the first time it searches. PostgreSQL's and
 * MySQL/MariaDB's `LOWER()` fold every letter of their UTF-8 text (on MariaDB whatever the
 * collation, `utf8mb4_bin` included).
 */
const SQLITE_LOWER = 'knox_lower';

/** The better-sqlite3 connections {@link SQLITE_LOWER} is registered on. */
const withSqliteLower = new WeakSet<object>();

/** What the search uses of a better-sqlite3 `Database` (type-only: the package stays optional). */
interface SqliteFunctions {
  function(
    name: string,
    options: { deterministic: boolean },
    fn: (value: unknown) => unknown,
  ): unknown;
}

/** The lowering function of the data source's dialect, registered first on SQLite. */
function lowerOn(dataSource: DataSource): string {
  if (knoxDialectOf(dataSource) !== 'sqlite') {
    return 'LOWER';
  }
  const db = (
    dataSource.driver as unknown as { databaseConnection: SqliteFunctions }
  ).databaseConnection;
  if (!withSqliteLower.has(db)) {
    db.function(SQLITE_LOWER, { deterministic: true }, (value) =>
      value === null || value === undefined
        ? null
        : String(value).toLowerCase(),
    );
    withSqliteLower.add(db);
  }
  return SQLITE_LOWER;
}

/**
 * The token admin's queries: every user's tokens, in one query with their users, through
 * TypeORM's query builder (named parameters, `LOWER(…) LIKE` with an explicit escape character),
 * so the statement carries no PostgreSQL-only syntax. Keyset pagination: a page starts after the
 * last token of the previous one (its sort key read back from the row itself while it exists),
 * so tokens created or revoked between pages neither repeat nor skip the others.
 */
@Injectable()
export class KnoxTokenSearch {
  constructor(private readonly store: KnoxTokenStore) {}

  /** One page of tokens, each with its user loaded, in `filter.sort` order then by id. */
  find(filter: KnoxTokenSearchFilter): Promise<KnoxToken[]> {
    return this.store.db(() => this.query(filter).getMany());
  }

  /**
   * The owner and digest of each of the tokens with public ids `ids` that exist (for a
   * revocation, which deletes them by digest under each owner's lock).
   */
  async ownersOf(
    ids: readonly string[],
  ): Promise<{ id: string; userId: unknown; digest: string }[]> {
    if (ids.length === 0) {
      return [];
    }
    return this.store.db(() =>
      this.store.repository
        .createQueryBuilder('token')
        .select('token.id', 'id')
        .addSelect('token.user_id', 'userId')
        .addSelect('token.digest', 'digest')
        .where('token.id IN (:...ids)', { ids: [...ids] })
        .getRawMany<{ id: string; userId: unknown; digest: string }>(),
    );
  }

  /** The sort key of `token` under `sort`, as the query computes it. */
  static sortKeyOf(token: KnoxToken, sort: KnoxTokenSortKey): Date {
    switch (sort.replace(/^-/, '')) {
      case 'lastUsedAt':
        return token.lastUsedAt ?? token.created;
      case 'expiry':
        return token.expiry ?? NEVER;
      default:
        return token.created;
    }
  }

  private query(filter: KnoxTokenSearchFilter): SelectQueryBuilder<KnoxToken> {
    const descending = filter.sort.startsWith('-');
    const key = SORT_KEYS[filter.sort.replace(/^-/, '')];
    const qb = this.store.repository
      .createQueryBuilder('token')
      .innerJoinAndSelect('token.user', 'user')
      .setParameter('never', NEVER);
    if (filter.userId !== undefined) {
      qb.andWhere('token.user_id = :userId', { userId: filter.userId });
    }
    if (filter.kind !== undefined) {
      qb.andWhere('token.kind = :kind', { kind: filter.kind });
    }
    if (filter.active !== undefined) {
      qb.andWhere(
        filter.active
          ? '(token.expiry IS NULL OR token.expiry >= :now)'
          : 'token.expiry < :now',
        { now: filter.now },
      );
    }
    if (filter.search) {
      this.matching(qb, filter.search, filter.userColumns);
    }
    if (filter.after) {
      this.after(qb, key, descending, filter.after);
    }
    return qb
      .orderBy(key, descending ? 'DESC' : 'ASC')
      .addOrderBy('token.id', 'ASC')
      .limit(filter.limit);
  }

  /**
   * `LOWER(column) LIKE '%text%'` on the token's text columns and the user's (SQLite:
   * {@link SQLITE_LOWER}).
   */
  private matching(
    qb: SelectQueryBuilder<KnoxToken>,
    search: NonNullable<KnoxTokenSearchFilter['search']>,
    userColumns: readonly string[],
  ): void {
    const columns = [
      'token.name',
      'token.ip',
      'token.last_used_ip',
      'token.user_agent',
      ...userColumns.map((property) => `user.${property}`),
    ];
    const lower = lowerOn(this.store.repository.manager.connection);
    const alternatives = columns.map(
      (column) => `${lower}(${column}) LIKE :pattern ESCAPE '!'`,
    );
    if (typeof search.digest === 'string') {
      alternatives.push('token.digest = :digest');
    }
    if (search.id !== undefined) {
      alternatives.push('token.id = :tokenId');
    }
    qb.andWhere(`(${alternatives.join(' OR ')})`, {
      pattern: `%${search.text.replace(/[!%_]/g, '!$&')}%`,
      digest: search.digest,
      tokenId: search.id,
    });
  }

  /**
   * The rows after the cursor's token in the sort order. Its key is read from the row itself
   * (exact at the database's precision); the cursor's copy is used only once the row is gone.
   */
  private after(
    qb: SelectQueryBuilder<KnoxToken>,
    key: string,
    descending: boolean,
    after: KnoxTokenSearchAfter,
  ): void {
    const table = this.store.repository.metadata.tablePath
      .split('.')
      .map((part) => qb.escape(part))
      .join('.');
    const inner = key.replace(/token\./g, 'cursor_row.');
    const cursorKey = `COALESCE((SELECT ${inner} FROM ${table} cursor_row WHERE cursor_row.id = :afterId), :afterKey)`;
    qb.andWhere(
      `(${key} ${descending ? '<' : '>'} ${cursorKey} OR (${key} = ${cursorKey} AND token.id > :afterId))`,
      { afterId: after.id, afterKey: after.key },
    );
  }
}
