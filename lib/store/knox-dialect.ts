/* Which SQL the library speaks on a data source: the one seam between the drivers. */

/** The SQL dialects the library has statements for. */
export type KnoxDialect = 'postgres' | 'mysql' | 'sqlite';

/** TypeORM's driver names the library runs on, and the dialect each speaks. */
const DIALECT_OF_DRIVER: Readonly<Record<string, KnoxDialect>> = {
  postgres: 'postgres',
  mysql: 'mysql',
  mariadb: 'mysql',
  'better-sqlite3': 'sqlite',
};

/** TypeORM's `type`s the library supports, as the messages list them. */
export const KNOX_SUPPORTED_DRIVERS: readonly string[] =
  Object.keys(DIALECT_OF_DRIVER);

/**
 * The data source's driver is not one the library has statements for (e.g. `mssql`,
 * `cockroachdb`, `sqlite` through node-sqlite3). Thrown at boot, before the token table is
 * created or any statement is sent; the message names the driver and the supported ones.
 */
export class KnoxUnsupportedDriverError extends Error {
  /** TypeORM's `type` of the data source. */
  readonly driver: string;

  constructor(driver: string) {
    super(
      `KnoxModule: TypeORM driver '${driver}' is not supported; nestjs-knox runs on ${KNOX_SUPPORTED_DRIVERS.map((name) => `'${name}'`).join(', ')} (docs/database.md, "Supported databases").`,
    );
    this.name = 'KnoxUnsupportedDriverError';
    this.driver = driver;
  }
}

/** A DataSource, its driver, or anything else that carries TypeORM's options. */
type WithOptions =
  { options: { type?: unknown } } | { driver: { options: { type?: unknown } } };

/** TypeORM's driver name (`options.type`) of a data source or a driver. */
export function knoxDriverName(source: WithOptions): string {
  const options =
    'driver' in source && source.driver
      ? source.driver.options
      : (source as { options: { type?: unknown } }).options;
  return String(options?.type);
}

/**
 * The dialect of a data source (or a driver): `mysql` and `mariadb` speak `mysql`,
 * `better-sqlite3` speaks `sqlite`. Any other driver: {@link KnoxUnsupportedDriverError}.
 */
export function knoxDialectOf(source: WithOptions): KnoxDialect {
  const driver = knoxDriverName(source);
  const dialect = Object.hasOwn(DIALECT_OF_DRIVER, driver)
    ? DIALECT_OF_DRIVER[driver]
    : undefined;
  if (!dialect) {
    throw new KnoxUnsupportedDriverError(driver);
  }
  return dialect;
}

/** The dialect, or `undefined` for a driver the library does not support. */
export function knoxDialectOrUndefined(
  source: WithOptions,
): KnoxDialect | undefined {
  const driver = knoxDriverName(source);
  return Object.hasOwn(DIALECT_OF_DRIVER, driver)
    ? DIALECT_OF_DRIVER[driver]
    : undefined;
}
