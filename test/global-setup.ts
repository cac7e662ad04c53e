/**
 * Jest global setup: provides process.env.DATABASE_URL for every test file.
 * - DATABASE_URL set: only checks that it accepts connections (fails fast otherwise).
 * - Not set: starts the embedded PGlite server once per jest run; global-teardown stops it.
 */
import pg from 'pg';
import {
  startEmbeddedPostgres,
  type EmbeddedPostgres,
} from './support/embedded-postgres.js';

/** Key under which the embedded server's handle is kept on globalThis for global-teardown. */
export const EMBEDDED_PG_KEY = '__knoxEmbeddedPostgres';

/** Enough for a few data sources and raw pools open at once in one test file. */
const EMBEDDED_MAX_CONNECTIONS = 32;

export default async function globalSetup(): Promise<void> {
  const url = process.env.DATABASE_URL;
  if (url) {
    await checkConnects(url);
    console.log(`\n[test db] DATABASE_URL ${redact(url)}`);
    return;
  }
  const started = performance.now();
  const embedded = await startEmbeddedPostgres({
    maxConnections: EMBEDDED_MAX_CONNECTIONS,
  });
  (globalThis as Record<string, unknown>)[EMBEDDED_PG_KEY] = embedded;
  process.env.DATABASE_URL = embedded.url;
  const ms = Math.round(performance.now() - started);
  console.log(
    `\n[test db] embedded PGlite ${embedded.url} (started in ${ms} ms; set DATABASE_URL to use a real server)`,
  );
}

export function embeddedHandle(): EmbeddedPostgres | undefined {
  return (globalThis as Record<string, unknown>)[EMBEDDED_PG_KEY] as
    EmbeddedPostgres | undefined;
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
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(
      `DATABASE_URL=${redact(url)} does not accept connections: ${reason || String(err)}. ` +
        'Start that server, fix the URL, or unset DATABASE_URL to use the embedded PGlite.',
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
