import { createHash, randomBytes } from 'node:crypto';
import {
  QueryFailedError,
  type QueryRunner,
  type Repository,
  type SelectQueryBuilder,
} from 'typeorm';
import type { Alias } from 'typeorm/query-builder/Alias.js';
import type { RawSqlResultsToEntityTransformer } from 'typeorm/query-builder/transformer/RawSqlResultsToEntityTransformer.js';
import type { BroadcasterResult } from 'typeorm/subscriber/BroadcasterResult.js';
import type { KnoxToken } from './knox-token.entity.js';

/**
 * SQLSTATEs after which a named statement cannot be used on this setup: the statement is not on
 * the server connection (a pooler in transaction mode hands out another one), or its cached
 * plan no longer fits the table (a column's type changed). The query builder takes over.
 */
const PREPARED_UNUSABLE = new Set(['26000', '42P05', '0A000']);

/** Drivers where the SQL generated once is sent through TypeORM's query runner as it is. */
const GENERATED_ONCE = new Set(['mysql', 'mariadb', 'better-sqlite3']);

/** One form of the lookup: SQL generated once by the query builder, and its hydration. */
interface LookupShape {
  name: string;
  text: string;
  alias: Alias;
  transformer: RawSqlResultsToEntityTransformer;
  callListeners: boolean;
}

/** TypeORM's own hydration and event result, internals loaded when the lookup is first used. */
interface TypeOrmInternals {
  Transformer: typeof RawSqlResultsToEntityTransformer;
  BroadcasterResult: typeof BroadcasterResult;
}

/**
 * Loads {@link TypeOrmInternals}; `undefined` if this TypeORM version does not have them as
 * expected (the query builder is then used).
 */
async function loadInternals(): Promise<TypeOrmInternals | undefined> {
  try {
    const [transformer, broadcaster] = await Promise.all([
      import('typeorm/query-builder/transformer/RawSqlResultsToEntityTransformer.js'),
      import('typeorm/subscriber/BroadcasterResult.js'),
    ]);
    const Transformer = transformer.RawSqlResultsToEntityTransformer;
    // (expressionMap, driver, rawRelationIdResults, queryRunner) as in TypeORM 1.x.
    return Transformer.length === 4
      ? { Transformer, BroadcasterResult: broadcaster.BroadcasterResult }
      : undefined;
  } catch {
    return undefined;
  }
}

/** A number per `pg` client, for {@link statementName}. */
const clientNumbers = new WeakMap<object, number>();
let clients = 0;
/** Distinguishes this copy of the module's clients from another's (another process, a test). */
const INSTANCE = randomBytes(4).toString('hex');

/**
 * The statement's name on this client: the shape's, suffixed with this module copy's random id
 * and the client's number. Servers that share one session between connections (PGlite's socket
 * server) would otherwise refuse a second connection's (or process's) `Parse` of a name another
 * one prepared (42P05), costing a round trip.
 */
function statementName(shape: LookupShape, client: object): string {
  let number = clientNumbers.get(client);
  if (number === undefined) {
    number = ++clients;
    clientNumbers.set(client, number);
  }
  return `${shape.name}_${INSTANCE}_${number}`;
}

/** What `pg` clients take: a named statement is parsed once per connection. */
interface PgClient {
  query(config: {
    name: string;
    text: string;
    values: unknown[];
  }): Promise<{ rows: Record<string, unknown>[] }>;
}

/**
 * The request path's one query, a token and its user by digest, as a named prepared statement
 * on PostgreSQL (on MySQL/MariaDB and better-sqlite3: the same SQL generated once, sent through
 * TypeORM's query runner, which on better-sqlite3 keeps the statement prepared): the SQL is what
 * TypeORM's query builder generates for it (table, schema and column names, joins), generated
 * once; the rows are hydrated by TypeORM's own transformer (so column transformers, dates and
 * the user entity's class apply as through `getMany`), and the query is logged and broadcast
 * (`beforeQuery`, `afterQuery`, `afterLoad`) as TypeORM does.
 * What it skips is building the query on every request and the server's parse and plan.
 *
 * {@link find} answers `undefined` where the query builder must be used instead: another driver
 * than `pg` on PostgreSQL, another database than those three, TypeORM's query result cache,
 * `@RelationId` on the entities, or once the server refused a named statement (e.g. behind a
 * pooler in transaction mode).
 */
export class KnoxPreparedLookup {
  /** The lookup's forms by number of digests, once the setup was found usable. */
  private shapes: Map<number, LookupShape> | undefined;
  /** Set when the setup cannot take the named statement: the query builder is used. */
  private disabled = false;
  /** PostgreSQL: the statement is sent named, by `pg`; elsewhere through `runner.query`. */
  private named = false;
  private internals: TypeOrmInternals | undefined;

  constructor(private readonly repository: Repository<KnoxToken>) {}

  /**
   * The tokens stored under any of `digests`, each with its user (one query), or `undefined`
   * when this setup must use the query builder. Driver errors are thrown as TypeORM's
   * `QueryFailedError`.
   */
  async find(digests: string[]): Promise<KnoxToken[] | undefined> {
    const shape = await this.shapeFor(digests.length);
    if (!shape) {
      return undefined;
    }
    const { manager } = this.repository;
    const runner = manager.connection.createQueryRunner(
      manager.connection.defaultReplicationModeForReads(),
    );
    try {
      const rows = await this.run(runner, shape, digests);
      if (rows === undefined) {
        this.disabled = true;
        return undefined;
      }
      if (rows.length === 0) {
        return [];
      }
      const tokens = shape.transformer.transform(
        rows,
        shape.alias,
      ) as KnoxToken[];
      if (shape.callListeners && shape.alias.hasMetadata) {
        await runner.broadcaster.broadcast(
          'Load',
          shape.alias.metadata,
          tokens,
        );
      }
      return tokens;
    } finally {
      await runner.release();
    }
  }

  /** The form of the lookup by `count` digests; `undefined` when the query builder must be used. */
  private async shapeFor(count: number): Promise<LookupShape | undefined> {
    if (!this.shapes && !this.disabled) {
      this.disabled = !(await this.usable());
      this.shapes = new Map();
    }
    if (this.disabled) {
      return undefined;
    }
    let shape = this.shapes!.get(count);
    if (!shape) {
      shape = this.shape(count);
      this.shapes!.set(count, shape);
    }
    return shape;
  }

  /**
   * Sends the statement as `PostgresQueryRunner.query` sends one (logging, subscribers' query
   * events, slow-query log), but named. `undefined` when the server refused the named statement.
   */
  private async run(
    runner: QueryRunner,
    shape: LookupShape,
    values: unknown[],
  ): Promise<Record<string, unknown>[] | undefined> {
    if (!this.named) {
      // TypeORM's own path (logging, query events, slow-query log); the SQL built once.
      return (await runner.query(shape.text, values)) as Record<
        string,
        unknown
      >[];
    }
    const client = (await runner.connect()) as PgClient;
    runner.connection.logger.logQuery(shape.text, values, runner);
    await runner.broadcaster.broadcast('BeforeQuery', shape.text, values);
    const events = new this.internals!.BroadcasterResult();
    try {
      const started = Date.now();
      const raw = await client.query({
        name: statementName(shape, client),
        text: shape.text,
        values,
      });
      this.succeeded(runner, events, shape, values, raw, Date.now() - started);
      return raw.rows;
    } catch (error) {
      return this.failed(runner, events, shape, values, error);
    } finally {
      await events.wait();
    }
  }

  /** What TypeORM does after a query: the `afterQuery` event, and the slow-query log. */
  private succeeded(
    runner: QueryRunner,
    events: BroadcasterResult,
    shape: LookupShape,
    values: unknown[],
    raw: unknown,
    elapsed: number,
  ): void {
    runner.broadcaster.broadcastAfterQueryEvent(
      events,
      shape.text,
      values,
      true,
      elapsed,
      raw,
      undefined,
    );
    const { logger, driver } = runner.connection;
    const slow = driver.options.maxQueryExecutionTime;
    if (slow && elapsed > slow) {
      logger.logQuerySlow(elapsed, shape.text, values, runner);
    }
  }

  /**
   * What TypeORM does after a failed query (log, `afterQuery` event), then: `undefined` when the
   * server refused the named statement, else the error as a `QueryFailedError`.
   */
  private failed(
    runner: QueryRunner,
    events: BroadcasterResult,
    shape: LookupShape,
    values: unknown[],
    error: unknown,
  ): undefined {
    runner.connection.logger.logQueryError(
      error as Error,
      shape.text,
      values,
      runner,
    );
    runner.broadcaster.broadcastAfterQueryEvent(
      events,
      shape.text,
      values,
      false,
      undefined,
      undefined,
      error,
    );
    if (PREPARED_UNUSABLE.has((error as { code?: string })?.code ?? '')) {
      return undefined;
    }
    throw new QueryFailedError(shape.text, values, error as Error);
  }

  /** Whether this setup can take the named statement (else the query builder is used). */
  private async usable(): Promise<boolean> {
    const { connection } = this.repository.manager;
    const options = connection.driver.options as {
      type: string;
      driver?: unknown;
      nativeDriver?: unknown;
      native?: unknown;
    };
    const userMetadata = this.repository.metadata.relations.find(
      (relation) => relation.propertyName === 'user',
    )?.inverseEntityMetadata;
    this.internals = await loadInternals();
    this.named = options.type === 'postgres';
    return (
      this.internals !== undefined &&
      (this.named
        ? !options.driver && !options.nativeDriver && !options.native
        : GENERATED_ONCE.has(options.type)) &&
      !connection.queryResultCache &&
      userMetadata !== undefined &&
      [this.repository.metadata, userMetadata].every(
        (metadata) => metadata.relationIds.length === 0,
      )
    );
  }

  /**
   * The lookup by `count` digests as the query builder writes it (`= $1`, or `IN ($1, …)` with
   * legacy digests): one form per number of digests a token is looked up by.
   */
  private shape(count: number): LookupShape {
    const query = lookupQuery(
      this.repository,
      new Array<string>(count).fill(''),
    );
    const [text] = query.getQueryAndParameters();
    const { expressionMap } = query;
    return {
      // A name per text: two tables (or two forms) never share a name on one connection.
      name: `knox_${createHash('sha256').update(text).digest('hex').slice(0, 32)}`,
      text,
      alias: expressionMap.mainAlias!,
      transformer: new this.internals!.Transformer(
        expressionMap,
        this.repository.manager.connection.driver,
        [],
        undefined,
      ),
      callListeners: expressionMap.callListeners,
    };
  }
}

/**
 * The lookup through TypeORM's query builder: the token stored under any of `digests`, with its
 * user (`= :digest` for one digest, `IN (…)` for several).
 */
export function lookupQuery(
  repository: Repository<KnoxToken>,
  digests: string[],
): SelectQueryBuilder<KnoxToken> {
  const query = repository
    .createQueryBuilder('token')
    .innerJoinAndSelect('token.user', 'user');
  return digests.length === 1
    ? query.where('token.digest = :digest', { digest: digests[0] })
    : query.where('token.digest IN (:...digests)', { digests });
}
