import {
  BadRequestException,
  Inject,
  Injectable,
  Logger,
  type OnModuleInit,
} from '@nestjs/common';
import { KnoxClock } from '../knox-clock.js';
import { KNOX_RESOLVED_OPTIONS } from '../knox.constants.js';
import { KnoxCache } from '../cache/knox-cache.js';
import { KnoxEventSink } from '../events/knox-event-sink.js';
import { KnoxEvents, type KnoxClientInfo } from '../events/knox.events.js';
import { KnoxOptionsError } from '../options/knox-options-error.js';
import type { ResolvedKnoxOptions } from '../options/knox-options.js';
import { KnoxSessions } from '../sessions/knox-sessions.js';
import type { KnoxToken, KnoxTokenKind } from '../store/knox-token.entity.js';
import { KnoxTokenSearch } from '../store/knox-token-search.js';
import { KnoxTokenStore } from '../store/knox-token.store.js';
import { digestToken } from '../tokens/knox-token-format.js';
import {
  KNOX_ADMIN_MAX_LIMIT,
  checkAdminQuery,
  encodeCursor,
  isTokenId,
  readUserId,
  type KnoxAdminTokenQuery,
} from './knox-admin-query.js';

/** One token as the admin lists it: never the token, its digest or anything to rebuild it. */
export interface KnoxAdminTokenItem {
  /** The token's public id (for `DELETE {path}/admin/tokens/:id`). */
  id: string;
  /** The owner's primary key. */
  userId: unknown;
  /** The owner's label (`admin.describeUser`; default username, email or id). */
  user: string;
  /** The name the client gave the token. */
  name: string | null;
  /** A session (login, the app's, their rotations) or a personal access token. */
  kind: KnoxTokenKind;
  /** What the token may do; `null` for every ability. */
  abilities: string[] | null;
  /** When the session began (kept across rotations). */
  createdAt: Date;
  /** When the token stops working; `null` never. */
  expiresAt: Date | null;
  /** When the token was last used (written at most once per `lastUsedUpdateInterval`). */
  lastUsedAt: Date | null;
  /** The client IP of that last use. */
  lastUsedIp: string | null;
  /** The client IP of the login. */
  ip: string | null;
  /** The user agent of the login. */
  userAgent: string | null;
  /** When a rotation replaced it (it works until `expiresAt`, its grace period); `null` if not. */
  retiredAt: Date | null;
  /** Whether it still works (not expired). */
  active: boolean;
}

/** One page of the admin's list. */
export interface KnoxAdminTokenPage {
  items: KnoxAdminTokenItem[];
  /** Pass it as `cursor` for the next page; `null` on the last page. */
  nextCursor: string | null;
}

/** Options of the admin's revocations: who did it (for the audit trail) and from where. */
export interface KnoxAdminRevokeOptions extends Partial<KnoxClientInfo> {
  /** The admin's user id, given to the events as `actorId`. */
  actorId?: unknown;
}

/** The user properties the default label is made of, searched by default when the entity has them. */
const DEFAULT_LABEL_COLUMNS = ['username', 'email'];

/**
 * The token admin's operations on every user's tokens: the list, revocation by id (one or many,
 * each owner's under that owner's lock, as every revocation is) and a user's logout everywhere.
 * Every revocation emits `knox.token-revoked` with `reason: 'admin'` and the `actorId`.
 */
@Injectable()
export class KnoxAdminTokens implements OnModuleInit {
  private readonly logger = new Logger('KnoxAdmin');
  private userColumns: string[] | undefined;

  constructor(
    @Inject(KNOX_RESOLVED_OPTIONS)
    private readonly options: ResolvedKnoxOptions,
    private readonly store: KnoxTokenStore,
    private readonly search: KnoxTokenSearch,
    private readonly sessions: KnoxSessions,
    private readonly cache: KnoxCache,
    private readonly events: KnoxEventSink,
    private readonly clock: KnoxClock,
  ) {}

  /** Checks `admin.searchUserColumns` against the user entity at boot. */
  onModuleInit(): void {
    if (this.options.admin) {
      this.searchColumns();
    }
  }

  /** One page of every user's tokens. See `KnoxTokenService.findTokens`. */
  async list(query: KnoxAdminTokenQuery = {}): Promise<KnoxAdminTokenPage> {
    const checked = checkAdminQuery(query);
    const now = this.clock.now();
    const text = checked.search;
    const rows = await this.search.find({
      ...checked,
      userId: this.userIdOf(checked.userId),
      search: text === undefined ? undefined : this.searchFor(text),
      now,
      limit: checked.limit + 1,
      userColumns: this.searchColumns(),
    });
    const page = rows.slice(0, checked.limit);
    const last = page[page.length - 1];
    return {
      items: page.map((token) => this.itemOf(token, now)),
      nextCursor:
        rows.length > checked.limit && last
          ? encodeCursor(
              checked.sort,
              last.id,
              KnoxTokenSearch.sortKeyOf(last, checked.sort),
            )
          : null,
    };
  }

  /**
   * Revokes the tokens with public ids `ids`, whoever owns them; how many it revoked (unknown
   * ids, and tokens revoked meanwhile, count for nothing). 400 for a list that is not 1 to 200
   * token ids.
   */
  async revoke(
    ids: unknown,
    options: KnoxAdminRevokeOptions = {},
  ): Promise<number> {
    const wanted = checkIds(ids);
    const byOwner = new Map<string, { userId: unknown; digests: string[] }>();
    for (const row of await this.search.ownersOf(wanted)) {
      const owner = byOwner.get(String(row.userId)) ?? {
        userId: row.userId,
        digests: [],
      };
      owner.digests.push(row.digest);
      byOwner.set(String(row.userId), owner);
    }
    let revoked = 0;
    for (const { userId, digests } of byOwner.values()) {
      const removed = await this.store
        .forUser(userId, (tokens) => tokens.delete(digests))
        .finally(() => this.cache.forgetTokens(digests));
      this.events.revoked(removed, userId, 'admin', options);
      revoked += removed.length;
    }
    return revoked;
  }

  /**
   * Revokes every token of the user (`knox.token-revoked` for each, then `knox.logout-all`, both
   * with `reason: 'admin'` and the `actorId`); how many.
   */
  async logoutAll(
    userId: unknown,
    options: KnoxAdminRevokeOptions = {},
  ): Promise<number> {
    const id = this.userIdOf(userId);
    const count = await this.sessions.revokeAll(id, {
      ...options,
      reason: 'admin',
    });
    this.events.emit(KnoxEvents.LOGOUT_ALL, {
      userId: id,
      count,
      ip: options.ip ?? null,
      userAgent: options.userAgent ?? null,
      reason: 'admin',
      ...(options.actorId !== undefined ? { actorId: options.actorId } : {}),
    });
    return count;
  }

  /** A user id given as a string (a URL, a query string) read as the user key's type takes it. */
  userIdOf(userId: unknown): unknown {
    if (typeof userId !== 'string') {
      return userId;
    }
    const key = this.store.userPrimaryColumn();
    const driver = this.store.repository.manager.connection.driver;
    return readUserId(userId, driver.normalizeType(key));
  }

  /** The label of a token's user. */
  labelOf(user: unknown): string {
    const describe = this.options.admin?.describeUser;
    if (describe) {
      try {
        return String(describe(user));
      } catch (error) {
        this.logger.warn(
          `admin.describeUser threw (${(error as Error)?.message ?? String(error)}); showing the default label.`,
        );
      }
    }
    const record = (user ?? {}) as Record<string, unknown>;
    const label =
      record.username ?? record.email ?? this.store.userIdOf(user as object);
    return String(label);
  }

  private itemOf(token: KnoxToken, now: Date): KnoxAdminTokenItem {
    return {
      id: token.id,
      userId: this.store.userIdOf(token.user as object),
      user: this.labelOf(token.user),
      name: token.name,
      kind: token.kind,
      abilities: token.abilities,
      createdAt: token.created,
      expiresAt: token.expiry,
      lastUsedAt: token.lastUsedAt,
      lastUsedIp: token.lastUsedIp,
      ip: token.ip,
      userAgent: token.userAgent,
      retiredAt: token.retiredAt,
      active: token.expiry === null || token.expiry.getTime() >= now.getTime(),
    };
  }

  /** The search text, and the token it names when it is a whole token or a public id. */
  private searchFor(text: string) {
    return {
      text: text.toLowerCase(),
      digest: text.length >= 32 ? digestToken(text) : undefined,
      id: isTokenId(text) ? text.toLowerCase() : undefined,
    };
  }

  /** `admin.searchUserColumns`, or the default ones the user entity has: string columns only. */
  private searchColumns(): string[] {
    if (this.userColumns) {
      return this.userColumns;
    }
    const metadata = this.store.repository.manager.connection.getMetadata(
      this.store.userPrimaryColumn().entityMetadata.target,
    );
    const given = this.options.admin?.searchUserColumns;
    const stringColumn = (property: string) => {
      const column = metadata.findColumnWithPropertyName(property);
      const type = column
        ? typeof column.type === 'string'
          ? column.type
          : column.type.name
        : '';
      return column !== undefined && /char|text|string/i.test(type);
    };
    if (given) {
      const wrong = given.filter((property) => !stringColumn(property));
      if (wrong.length > 0) {
        throw new KnoxOptionsError(
          `\`admin.searchUserColumns\` names ${wrong.join(', ')}, which ${metadata.name} has no text column for; list text columns of the user entity (by property name).`,
        );
      }
    }
    this.userColumns = given ?? DEFAULT_LABEL_COLUMNS.filter(stringColumn);
    return this.userColumns;
  }
}

/** The ids of a bulk revocation: 1 to 200 token ids, lowercased, without repeats. */
function checkIds(ids: unknown): string[] {
  if (
    !Array.isArray(ids) ||
    ids.length === 0 ||
    ids.length > KNOX_ADMIN_MAX_LIMIT
  ) {
    throw new BadRequestException(
      `'ids' must be a list of 1 to ${KNOX_ADMIN_MAX_LIMIT} token ids.`,
    );
  }
  const bad = ids.find((id) => !isTokenId(id));
  if (bad !== undefined) {
    throw new BadRequestException(
      `'ids' must hold token ids (UUIDs, as the list gives them); got ${JSON.stringify(bad)}.`,
    );
  }
  return [...new Set((ids as string[]).map((id) => id.toLowerCase()))];
}
