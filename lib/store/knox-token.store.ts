import {
  HttpException,
  Inject,
  Injectable,
  Logger,
  ServiceUnavailableException,
  UnauthorizedException,
} from '@nestjs/common';
import { EntityManager, Repository } from 'typeorm';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata.js';
import {
  KNOX_MODULE_EXTRAS,
  KNOX_TOKEN_REPOSITORY,
} from '../knox.constants.js';
import { KnoxMessages } from '../knox.messages.js';
import type { KnoxStoreSettings } from './knox-store-settings.js';
import { KnoxToken } from './knox-token.entity.js';
import { KnoxOutageLog } from './knox-outage-log.js';
import { KnoxPreparedLookup, lookupQuery } from './knox-prepared-lookup.js';
import { toDate, toToken } from './knox-token-row.js';
import { knoxDialectOf } from './knox-dialect.js';
import type { KnoxSql, KnoxTouch } from './dialects/knox-sql.js';
import { knoxSqlFor } from './dialects/knox-sql-for.js';
import {
  knoxSqliteSerial,
  knoxSqliteTransaction,
} from './knox-sqlite-transactions.js';

export type { KnoxTouch } from './dialects/knox-sql.js';

/**
 * The operations on one user's tokens inside {@link KnoxTokenStore.forUser}: they run in one
 * transaction that holds the user's lock.
 */
export interface KnoxUserTokens {
  /** The token stored under `digest`, if it still exists (not its user). */
  find(digest: string): Promise<KnoxToken | undefined>;
  /** The token with public id `id`, if the user has it. */
  findById(id: string): Promise<KnoxToken | undefined>;
  /** The user's tokens that have not expired at `now`, oldest first. */
  live(now: Date): Promise<KnoxToken[]>;
  /** Stores a new token; 401 "User inactive or deleted." when the user's row is gone. */
  insert(record: KnoxToken): Promise<void>;
  /** Deletes tokens by digest; returns those deleted. */
  delete(digests: string[]): Promise<KnoxToken[]>;
  /** Deletes every token of the user, but the one with public id `except`; returns those. */
  deleteAll(except?: string): Promise<KnoxToken[]>;
  /** Marks a token retired at `at` with the given expiry; whether it still existed. */
  retire(digest: string, expiry: Date, at: Date): Promise<boolean>;
  /** Writes a new expiry to a token that is not retired, up to its `max_expiry`; whether it did. */
  extend(digest: string, expiry: Date): Promise<boolean>;
  /** Renames the token with public id `id`; the renamed token, if the user has it. */
  rename(id: string, name: string | null): Promise<KnoxToken | undefined>;
}

/**
 * Every statement the library sends goes through here (the SQL of each dialect is in
 * `dialects/`), and so does the mapping of driver errors to 503. The rest of the library speaks
 * in tokens and user ids.
 *
 * Writers of one user's tokens serialize on the user's lock inside one transaction
 * ({@link forUser}): PostgreSQL's transaction-level advisory lock keyed by the token table and
 * the user id, MySQL's `SELECT … FOR UPDATE` of the user's row; the request path
 * ({@link findByDigests}, {@link touch}) takes no lock.
 */
@Injectable()
export class KnoxTokenStore {
  /** Logs the first failure of an outage, then summaries, then the recovery. */
  private readonly outage = new KnoxOutageLog({
    logger: new Logger('KnoxTokenService'),
  });
  private readonly lookup: KnoxPreparedLookup;
  /** The statements of the data source's dialect. */
  readonly sql: KnoxSql;

  constructor(
    @Inject(KNOX_TOKEN_REPOSITORY)
    readonly repository: Repository<KnoxToken>,
    @Inject(KNOX_MODULE_EXTRAS)
    private readonly extras: KnoxStoreSettings,
  ) {
    this.lookup = new KnoxPreparedLookup(repository);
    this.sql = knoxSqlFor(knoxDialectOf(repository.manager.connection), {
      tokenTable: repository.metadata.tablePath,
      userTable: () => {
        const column = this.userPrimaryColumn();
        return {
          path: column.entityMetadata.tablePath,
          primaryKey: column.databaseName,
        };
      },
    });
  }

  /**
   * The tokens stored under any of `digests`, each with its user: one query, a named prepared
   * statement where the setup allows it ({@link KnoxPreparedLookup}), else the query builder.
   */
  async findByDigests(digests: string[]): Promise<KnoxToken[]> {
    return this.db(
      async () =>
        (await this.lookup.find(digests)) ??
        lookupQuery(this.repository, digests).getMany(),
    );
  }

  /**
   * The write of the request path, one statement: `lastUsedAt` (and its IP) unless the row is
   * retired (retired rows are read-only), a new expiry unless the row was retired meanwhile (a token rotated after it was read lives out its grace period), and the
   * move from a legacy digest. The row is matched by either digest, so concurrent first uses of
   * a legacy token all find the row the first one moved (PostgreSQL re-checks the condition on
   * the new row version).
   *
   * @returns the row's expiry, retirement and last use after the write, or `undefined` when it
   *   is gone
   */
  async touch(
    digest: string,
    change: KnoxTouch,
  ): Promise<
    | Pick<KnoxToken, 'expiry' | 'retiredAt' | 'lastUsedAt' | 'lastUsedIp'>
    | undefined
  > {
    const digests = change.digest ? [digest, change.digest] : [digest];
    const row = await this.db(() =>
      this.sql.touch(this.repository.manager, digests, change),
    );
    return (
      row && {
        expiry: toDate(row.expiry),
        retiredAt: toDate(row.retired_at),
        lastUsedAt: toDate(row.last_used_at),
        lastUsedIp: (row.last_used_ip as string | null) ?? null,
      }
    );
  }

  /** Deletes the token stored under `digest` if it has expired at `now`; whether it did. */
  async deleteExpired(digest: string, now: Date): Promise<boolean> {
    const count = await this.db(() =>
      this.sql.deleteExpired(this.repository.manager, digest, now),
    );
    return count > 0;
  }

  /** The user's tokens that have not expired at `now`, newest first, each with its user. */
  async list(userId: unknown, now: Date): Promise<KnoxToken[]> {
    return this.db(() =>
      this.repository
        .createQueryBuilder('token')
        .innerJoinAndSelect('token.user', 'user')
        .where('token.user_id = :userId', { userId })
        .andWhere('(token.expiry IS NULL OR token.expiry >= :now)', { now })
        .orderBy('token.created', 'DESC')
        .addOrderBy('token.id', 'ASC')
        .getMany(),
    );
  }

  /** The owner of the token stored under `digest`, if it still exists. */
  async ownerOf(digest: string): Promise<unknown> {
    const row = await this.db(() =>
      this.repository.findOne({ where: { digest }, relations: { user: true } }),
    );
    return row?.user;
  }

  /**
   * Deletes up to `batchSize` tokens that expired before `now`; how many it deleted. One short
   * autocommit statement, oldest expiry first, through the expiry index. On PostgreSQL the rows
   * are deleted by their physical address and rows another transaction holds (a revocation, a
   * refresh) are skipped, so a batch never waits for a lock.
   */
  async deleteExpiredBatch(now: Date, batchSize: number): Promise<number> {
    return this.db(() =>
      this.sql.deleteExpiredBatch(this.repository.manager, now, batchSize),
    );
  }

  /**
   * Runs `work` on one user's tokens in a READ COMMITTED transaction that first takes the user's
   * lock (PostgreSQL's advisory lock, MySQL's row lock on the user), so that everything that
   * creates or revokes that user's tokens happens one at a time, and each statement sees what
   * the ones before it committed. (Under REPEATABLE READ the snapshot would be taken before the
   * wait.) On MySQL/MariaDB a deadlock (InnoDB rolled the whole transaction back, e.g. against
   * a prune batch locking rows in expiry order) is retried once, then answered 503 like a lock
   * wait timeout; `work` only touches the database, so running it again is safe.
   */
  async forUser<T>(
    userId: unknown,
    work: (tokens: KnoxUserTokens) => Promise<T>,
  ): Promise<T> {
    const run = async (manager: EntityManager) => {
      await this.sql.lockUser(manager, userId);
      return work(this.userTokens(manager, userId));
    };
    const dataSource = this.repository.manager.connection;
    // SQLite: one connection; the queue and BEGIN IMMEDIATE serialise every writer of the file.
    const once = () =>
      this.sql.dialect === 'sqlite'
        ? knoxSqliteTransaction(dataSource, run)
        : this.repository.manager.transaction('READ COMMITTED', run);
    return this.db(async () => {
      try {
        return await once();
      } catch (error) {
        if (this.sql.isDeadlock(error)) {
          return once();
        }
        throw error;
      }
    });
  }

  /** The primary key of a user entity instance. */
  userIdOf(user: unknown): unknown {
    const id = this.userPrimaryColumn().getEntityValue(user as object);
    if (id === undefined || id === null) {
      throw new Error(
        'KnoxTokenService: the user has no primary key value; pass a loaded user entity.',
      );
    }
    return id;
  }

  /** A reference to the user with primary key `userId`, as TypeORM takes relations. */
  userRef(userId: unknown): Record<string, unknown> {
    return { [this.userPrimaryColumn().propertyName]: userId };
  }

  /** The user entity's one primary column; throws when it has none or several. */
  userPrimaryColumn(): ColumnMetadata {
    const metadata = this.repository.manager.connection.getMetadata(
      this.extras.userEntity,
    );
    if (metadata.primaryColumns.length !== 1) {
      throw new Error(
        `KnoxModule: the user entity ${metadata.name} must have exactly one primary column.`,
      );
    }
    return metadata.primaryColumns[0];
  }

  /**
   * Runs a statement; a driver error becomes 503 (logged), so that an outage never reads as
   * "invalid token". HTTP errors thrown inside pass through.
   */
  async db<T>(work: () => Promise<T>): Promise<T> {
    let result: T;
    try {
      // On SQLite, never inside another unit of the library's work on the one connection.
      result = await (this.sql.dialect === 'sqlite'
        ? knoxSqliteSerial(this.repository.manager.connection, work)
        : work());
    } catch (error) {
      if (error instanceof HttpException) {
        // The database answered; the operation refused.
        this.outage.success();
        throw error;
      }
      this.outage.failure(error);
      throw new ServiceUnavailableException(KnoxMessages.UNAVAILABLE);
    }
    this.outage.success();
    return result;
  }

  /**
   * Counts a database failure met outside the store's own statements (the app's
   * `validateUser` during an outage) in the same outage log: a few summary lines for an
   * outage, not a line and a stack per request.
   */
  reportOutage(error: unknown): void {
    this.outage.failure(error);
  }

  private userTokens(manager: EntityManager, userId: unknown): KnoxUserTokens {
    return new UserTokensInTransaction(
      manager,
      userId,
      this.sql,
      this.repository.target,
    );
  }
}

/** {@link KnoxUserTokens} on the manager of the transaction that holds the user's lock. */
class UserTokensInTransaction implements KnoxUserTokens {
  constructor(
    private readonly manager: EntityManager,
    private readonly userId: unknown,
    private readonly sql: KnoxSql,
    private readonly entity: Repository<KnoxToken>['target'],
  ) {}

  async find(digest: string): Promise<KnoxToken | undefined> {
    const row = await this.sql.find(this.manager, digest, this.userId);
    return row && toToken(row);
  }

  async findById(id: string): Promise<KnoxToken | undefined> {
    const row = await this.sql.findById(this.manager, id, this.userId);
    return row && toToken(row);
  }

  async live(now: Date): Promise<KnoxToken[]> {
    const rows = await this.sql.live(this.manager, this.userId, now);
    return rows.map(toToken);
  }

  async insert(record: KnoxToken): Promise<void> {
    try {
      await this.manager.getRepository(this.entity).insert(record);
    } catch (error) {
      // The user's row is gone (deleted since the credentials were checked).
      if (this.sql.isForeignKeyViolation(error)) {
        throw new UnauthorizedException(KnoxMessages.USER_INACTIVE);
      }
      throw error;
    }
  }

  async delete(digests: string[]): Promise<KnoxToken[]> {
    if (digests.length === 0) {
      return [];
    }
    const rows = await this.sql.delete(this.manager, digests, this.userId);
    return rows.map(toToken);
  }

  async deleteAll(except?: string): Promise<KnoxToken[]> {
    const rows = await this.sql.deleteAll(this.manager, this.userId, except);
    return rows.map(toToken);
  }

  async retire(digest: string, expiry: Date, at: Date): Promise<boolean> {
    return (await this.sql.retire(this.manager, digest, expiry, at)) > 0;
  }

  async rename(
    id: string,
    name: string | null,
  ): Promise<KnoxToken | undefined> {
    const row = await this.sql.rename(this.manager, id, name, this.userId);
    return row && toToken(row);
  }

  async extend(digest: string, expiry: Date): Promise<boolean> {
    return (await this.sql.extend(this.manager, digest, expiry)) > 0;
  }
}
