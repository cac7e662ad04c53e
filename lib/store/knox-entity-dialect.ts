import { Logger } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { ConnectionMetadataBuilder } from 'typeorm/connection/ConnectionMetadataBuilder.js';
import type { EntityMetadata } from 'typeorm/metadata/EntityMetadata.js';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata.js';
import { knoxDialectOrUndefined, type KnoxDialect } from './knox-dialect.js';

/*
 * The token entity is declared once, with PostgreSQL's column types, before the driver is known
 * (`knoxTokenEntity(User)` runs when the app's modules are defined). When a data source builds
 * its entity metadata, the token entities of THAT data source get their driver's types: the
 * decorator arguments (shared by every data source) are never changed.
 */

const HOOKED = Symbol.for('nestjs-knox.entityDialectHook');

type Build = (
  this: ConnectionMetadataBuilder,
  entities: unknown,
) => Promise<EntityMetadata[]>;

/**
 * Installs the hook on TypeORM's metadata build, once per copy of TypeORM (idempotent: a second
 * call, or a second copy of this module, finds it installed).
 */
export function installKnoxEntityDialectHook(): void {
  const prototype = ConnectionMetadataBuilder.prototype as unknown as Record<
    symbol | string,
    unknown
  >;
  if (prototype[HOOKED]) {
    return;
  }
  const original = prototype.buildEntityMetadatas as Build;
  const hooked: Build = async function (this, entities) {
    const metadatas = await original.call(this, entities);
    const dataSource = (this as unknown as { dataSource: DataSource })
      .dataSource;
    adaptKnoxMetadatas(dataSource, metadatas);
    return metadatas;
  };
  prototype.buildEntityMetadatas = hooked;
  prototype[HOOKED] = true;
}

/** The mark `knoxTokenEntity` puts on the classes it makes. */
export const KNOX_TOKEN_ENTITY_MARK = Symbol.for('nestjs-knox.tokenEntity');

/** Whether a metadata is one of the token entities `knoxTokenEntity` makes. */
export function isKnoxTokenMetadata(metadata: EntityMetadata): boolean {
  const target = metadata.target as unknown;
  return (
    typeof target === 'function' &&
    (target as unknown as Record<symbol, unknown>)[KNOX_TOKEN_ENTITY_MARK] ===
      true
  );
}

/** Gives the token entities of `dataSource` their driver's column types. */
function adaptKnoxMetadatas(
  dataSource: DataSource,
  metadatas: EntityMetadata[],
): void {
  const knox = metadatas.filter(isKnoxTokenMetadata);
  if (knox.length === 0) {
    return;
  }
  const dialect = knoxDialectOrUndefined(dataSource);
  for (const metadata of knox) {
    if (dialect === undefined) {
      // The module refuses this data source as soon as it gets the repository
      // (KnoxUnsupportedDriverError). Until then, TypeORM must neither reject the entity (its
      // retries would delay the error by ~30 s) nor create its table: it is set aside as a view
      // that is not synchronized (views are not validated).
      setAside(metadata);
    } else if (dialect !== 'postgres') {
      metadata.columns.forEach((column) => adaptColumn(column, dialect));
    }
  }
  if (dialect === 'mysql') {
    warnOnLocalTime(dataSource);
  }
}

function setAside(metadata: EntityMetadata): void {
  Object.assign(metadata, { tableType: 'view', synchronize: false });
}

/**
 * PostgreSQL's types in the dialect's: `timestamptz` → `datetime` (`datetime(3)`, ms, on
 * MySQL/MariaDB), `text[]` → JSON text (`simple-json`), `uuid` with `gen_random_uuid()` →
 * `varchar(36)` whose value the library always sets (TypeORM generates one for other inserts
 * through it).
 */
function adaptColumn(column: ColumnMetadata, dialect: KnoxDialect): void {
  if (column.type === 'timestamptz') {
    column.type = 'datetime';
    column.precision = dialect === 'mysql' ? 3 : undefined;
  } else if (column.isArray && column.type === 'text') {
    column.type = 'simple-json';
    column.isArray = false;
  } else if (column.type === 'uuid') {
    column.type = 'varchar';
    column.length = '36';
    column.default = undefined;
  }
}

const warned = new WeakSet<object>();

/**
 * MySQL's `datetime` has no time zone: mysql2 writes and reads it in the `timezone` option's
 * offset, the process's local time by default. A table written in local time is read wrongly by
 * anything else (a DBA's `UPDATE … SET expiry = '…'`, another app, a process in another zone, a
 * DST change): one warning per data source when the offset is not UTC.
 */
function warnOnLocalTime(dataSource: DataSource): void {
  if (warned.has(dataSource)) {
    return;
  }
  warned.add(dataSource);
  const offset = storedOffset(
    (dataSource.options as { timezone?: string }).timezone,
  );
  if (offset !== undefined) {
    new Logger('KnoxModule').warn(
      `the ${dataSource.options.type} data source stores times in ${offset}, not UTC: token expiries set by other clients (a DBA's UPDATE, another app or time zone) would be read off by that offset. Set \`timezone: 'Z'\` in its options to store UTC (docs/database.md, "MySQL and MariaDB").`,
    );
  }
}

/** The offset times are stored in when it is not UTC, as words; `undefined` for UTC. */
function storedOffset(timezone: string | undefined): string | undefined {
  if (timezone === undefined || timezone === 'local') {
    const minutes = -new Date().getTimezoneOffset();
    return minutes === 0
      ? undefined
      : `the process's local time (UTC${formatOffset(minutes)})`;
  }
  if (/^(Z|[+-]00:?00)$/i.test(timezone)) {
    return undefined;
  }
  return `UTC${timezone}`;
}

function formatOffset(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}
