import pg from 'pg';

/**
 * Counts, at the driver, every statement and every transaction the process sends to PostgreSQL
 * (whatever sends it: TypeORM, a prepared statement, the driver directly): a statement outside
 * BEGIN/START TRANSACTION … COMMIT is a transaction of its own. The cache's listening connection
 * (application_name `knox-cache-listener`) is left out: it sends no work, only LISTEN and pings.
 * Also times statements matching `timed` (pruneExpired's batches).
 */
export class DbCounter {
  queries = 0;
  transactions = 0;
  timed: number[] = [];
  timedPattern: RegExp | null = null;

  install(): void {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the patched query needs both
    const counter = this;
    const inTransaction = new WeakMap<object, boolean>();
    const original = pg.Client.prototype.query as (
      ...args: unknown[]
    ) => unknown;
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      const config = args[0] as string | { text?: string } | undefined;
      const text = typeof config === 'string' ? config : (config?.text ?? '');
      const params = (
        this as unknown as {
          connectionParameters?: { application_name?: string };
        }
      ).connectionParameters;
      if (params?.application_name === 'knox-cache-listener') {
        return original.apply(this, args);
      }
      counter.queries++;
      if (/^\s*(BEGIN|START TRANSACTION)\b/i.test(text)) {
        inTransaction.set(this, true);
        counter.transactions++;
      } else if (/^\s*(COMMIT|ROLLBACK)\b/i.test(text)) {
        inTransaction.set(this, false);
      } else if (!inTransaction.get(this)) {
        counter.transactions++;
      }
      const result = original.apply(this, args);
      if (counter.timedPattern?.test(text) && result instanceof Promise) {
        const started = performance.now();
        void result.then(
          () => counter.timed.push(performance.now() - started),
          () => undefined,
        );
      }
      return result;
    } as typeof pg.Client.prototype.query;
  }
}
