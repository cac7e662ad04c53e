/**
 * What the cache's listener uses of `pg`'s `Client`, written out so that the package's type
 * declarations do not import `pg`: an app type-checks them (`skipLibCheck: false`) without
 * `@types/pg`. `pg`'s own `Client` fits it.
 */
export interface KnoxPgClient {
  connect(): Promise<unknown>;
  query<R = Record<string, unknown>>(sql: string): Promise<{ rows: R[] }>;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  on(
    event: 'notification',
    listener: (message: KnoxPgNotification) => void,
  ): unknown;
  removeAllListeners(): unknown;
  end(): Promise<unknown>;
}

/** A `NOTIFY` as `pg` delivers it. */
export interface KnoxPgNotification {
  channel: string;
  payload?: string;
}

/** `pg`'s connection settings (passed through as they are). */
export type KnoxPgClientConfig = object;

/** `pg`'s `Client` class, as the TypeORM postgres driver holds it. */
export type KnoxPgClientClass = new (
  config: KnoxPgClientConfig,
) => KnoxPgClient;
