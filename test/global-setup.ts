/**
 * Jest global setup: provides process.env.DATABASE_URL to every test file.
 * - DATABASE_URL set: only checks that it accepts connections (fails fast otherwise).
 * - Not set: starts the embedded PGlite server once per jest run; global-teardown stops it.
 *
 * Jest loads global setup/teardown as CommonJS through its require hook (supportsStaticESM is
 * false for global hooks) and applies no moduleNameMapper there, so the usual relative `.js`
 * import of a .ts file cannot resolve in this file: it require()s the extensionless path instead,
 * which the hook resolves to the .ts source. Packages (pg, pglite) load through their CJS builds.
 */
import pg from 'pg';
import type * as EmbeddedPostgresModule from '../example/src/embedded-postgres.js';

/** Where the embedded server's handle waits for global-teardown (same process). */
const HANDLE = Symbol.for('nestjs-knox.test.embeddedPostgres');

/** Enough for a few data sources and raw pools open at once in one test file. */
const EMBEDDED_MAX_CONNECTIONS = 32;

export default async function globalSetup(): Promise<void> {
  const url = process.env.DATABASE_URL;
  if (url) {
    await checkConnects(url);
    console.log(`\n[test db] DATABASE_URL ${redact(url)}`);
    return;
  }
  const { startEmbeddedPostgres } =
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('../example/src/embedded-postgres') as typeof EmbeddedPostgresModule;
  const started = performance.now();
  const embedded = await startEmbeddedPostgres({
    maxConnections: EMBEDDED_MAX_CONNECTIONS,
  });
  (globalThis as Record<symbol, unknown>)[HANDLE] = embedded;
  process.env.DATABASE_URL = embedded.url;
  // Tests that need several concurrent PostgreSQL sessions (PGlite has one) read this.
  process.env.KNOX_TEST_EMBEDDED_DB = '1';
  const ms = Math.round(performance.now() - started);
  console.log(
    `\n[test db] embedded PGlite at ${embedded.url}, started in ${ms} ms (set DATABASE_URL to use a real server)`,
  );
}

async function checkConnects(url: string): Promise<void> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: 5000,
  });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (err) {
    const reason =
      err instanceof Error && err.message ? err.message : String(err);
    throw new Error(
      `DATABASE_URL=${redact(url)} does not accept connections: ${reason}. ` +
        'Start that server, fix the URL, or unset DATABASE_URL to use the embedded PGlite.',
      { cause: err },
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}
