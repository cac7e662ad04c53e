import type { DataSource } from 'typeorm';
import { quotePath, splitTablePath } from '../knox-token-table.js';
import { KNOX_CACHE_LOG_TABLE } from './knox-cache-log-postgres.js';
import { cacheLogDialectOf } from './knox-cache-log-dialect.js';
import type { KnoxCacheLogReader } from './knox-cache-log-types.js';

export type { KnoxCacheLogReader } from './knox-cache-log-types.js';
import {
  KnoxMysqlCacheLogReader,
  type MysqlDriverParts,
} from './knox-cache-log-mysql.js';
import {
  KnoxSqliteCacheLogReader,
  type SqliteDriverParts,
} from './knox-cache-log-sqlite.js';

/** What the reader uses of `pg`'s `Client` (written out: no import of `pg`'s types). */
interface PgQueryClient {
  connect(): Promise<unknown>;
  query<R>(sql: string, values?: unknown[]): Promise<{ rows: R[] }>;
  on(event: 'error', listener: (error: Error) => void): unknown;
  removeAllListeners(): unknown;
  end(): Promise<unknown>;
}

interface PgDriverParts {
  postgres: { Client: new (config: object) => PgQueryClient };
  master?: { options?: object };
}

/**
 * PostgreSQL. A transaction that commits after others may hold a lower `id` (identity values
 * are taken in insertion order, made visible in commit order), so a mark alone would skip it.
 * Each read also takes the snapshot's in-progress transactions (`pg_snapshot_xip`): those, and
 * only those, can later commit rows below the mark, and the next read asks for their rows by
 * `txid` too. Rows and snapshot come from one statement, so from one snapshot.
 */
export class KnoxPgCacheLogReader implements KnoxCacheLogReader {
  private client: PgQueryClient | undefined;
  private mark = '0';
  private pending: string[] = [];
  /** The oldest running transaction at the previous prune: older rows are seen by every reader. */
  private pruneHorizon: string | undefined;
  private readonly log: string;

  constructor(
    private readonly driver: PgDriverParts,
    tokenTable: string,
    defaultSchema: string | undefined,
  ) {
    this.log = quotePath({
      schema: splitTablePath(tokenTable, defaultSchema).schema,
      table: KNOX_CACHE_LOG_TABLE,
    });
  }

  async open(): Promise<void> {
    const client = new this.driver.postgres.Client({
      ...(this.driver.master?.options ?? {}),
      keepAlive: true,
      application_name: 'knox-cache-poller',
    });
    client.on('error', () => undefined);
    this.client = client;
    await client.connect();
    const [row] = (
      await client.query<{ mark: string; xip: string[] }>(
        `SELECT coalesce(max(id), 0)::text AS mark,
                ARRAY(SELECT pg_snapshot_xip(pg_current_snapshot()))::text[] AS xip
           FROM ${this.log}`,
      )
    ).rows;
    this.mark = row.mark;
    this.pending = row.xip;
  }

  async read(): Promise<string[]> {
    const rows = (
      await this.connected().query<{
        id: string | null;
        message: string | null;
        xip: string[] | null;
      }>(
        `SELECT id::text AS id, message, NULL::text[] AS xip FROM ${this.log}
          WHERE id > $1::bigint OR txid = ANY($2::xid8[])
         UNION ALL
         SELECT NULL, NULL, ARRAY(SELECT pg_snapshot_xip(pg_current_snapshot()))::text[]`,
        [this.mark, this.pending],
      )
    ).rows;
    const messages: string[] = [];
    let mark = BigInt(this.mark);
    for (const row of rows) {
      if (row.id === null) {
        this.pending = row.xip ?? [];
        continue;
      }
      messages.push(row.message ?? 'f');
      const id = BigInt(row.id);
      if (id > mark) {
        mark = id;
      }
    }
    this.mark = mark.toString();
    return messages;
  }

  /**
   * Deletes rows older than `retentionMs` whose transaction ended before the previous prune
   * began: a row that commits late (its transaction long open) is kept for a full prune
   * interval after its commit, however old its `created_at`. Several instances pruning at once
   * only wait on each other's row locks.
   */
  async prune(retentionMs: number): Promise<number> {
    const client = this.connected();
    let deleted = 0;
    if (this.pruneHorizon !== undefined) {
      const result = (await client.query(
        `WITH gone AS (
           DELETE FROM ${this.log}
            WHERE created_at < now() - make_interval(secs => $1::double precision / 1000)
              AND txid < $2::xid8
           RETURNING 1)
         SELECT count(*)::int AS n FROM gone`,
        [retentionMs, this.pruneHorizon],
      )) as { rows: { n: number }[] };
      deleted = result.rows[0]?.n ?? 0;
    }
    const [row] = (
      await client.query<{ xmin: string }>(
        `SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin`,
      )
    ).rows;
    this.pruneHorizon = row.xmin;
    return deleted;
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) {
      client.removeAllListeners();
      client.on('error', () => undefined);
      await client.end().catch(() => undefined);
    }
  }

  private connected(): PgQueryClient {
    if (!this.client) {
      throw new Error('the cache log reader is closed');
    }
    return this.client;
  }
}

/** The reader for the data source's driver. */
export function knoxCacheLogReader(
  dataSource: DataSource,
  tokenTable: string,
): KnoxCacheLogReader {
  const driver = dataSource.driver as unknown;
  const dialect = cacheLogDialectOf(dataSource.options.type);
  if (dialect === 'mysql') {
    return new KnoxMysqlCacheLogReader(driver as MysqlDriverParts);
  }
  if (dialect === 'sqlite') {
    return new KnoxSqliteCacheLogReader(driver as SqliteDriverParts);
  }
  return new KnoxPgCacheLogReader(
    driver as PgDriverParts,
    tokenTable,
    (dataSource.options as { schema?: string }).schema,
  );
}
