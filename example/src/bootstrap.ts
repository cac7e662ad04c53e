import 'reflect-metadata';
import { ConsoleLogger, Logger, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { AppModule } from './app.module.js';
import {
  DATABASE_LABELS,
  exampleDatabaseKind,
  type ExampleDatabaseKind,
} from './database.js';
import { startEmbeddedPostgres } from './embedded-postgres.js';
import { UsersService } from './users/users.service.js';

export const DEMO_USERNAME = 'demo';
export const DEMO_PASSWORD = 'demo-password';

export interface ExampleOptions {
  /** Port to listen on; 0 picks a free one. */
  port: number;
  /**
   * A database server (`postgres://…`, `mysql://…`) or file (`sqlite:<file>`); without it an
   * embedded PostgreSQL (PGlite) is started.
   */
  databaseUrl?: string;
  /** Where the embedded PostgreSQL keeps its data. */
  dataDir: string;
  /** Print the banner with the curl lines. */
  banner?: boolean;
  /** PostgreSQL schema for the tables (must exist). */
  schema?: string;
}

export interface RunningExample {
  app: INestApplication;
  url: string;
  stop(): Promise<void>;
}

/** Starts the example: database, app, demo user. */
export async function startExample(
  options: ExampleOptions,
): Promise<RunningExample> {
  const logger = new Logger('Example');
  // Before the data directory is opened: a second `npm start` must not open it too.
  await ensurePortFree(options.port);
  let databaseUrl = options.databaseUrl;
  let stopDatabase = async (): Promise<void> => undefined;
  if (databaseUrl) {
    let kind: ExampleDatabaseKind;
    try {
      kind = exampleDatabaseKind(databaseUrl);
    } catch (error) {
      throw new ExampleStartError((error as Error).message);
    }
    logger.log(
      `Database: ${DATABASE_LABELS[kind]} at ${redact(databaseUrl)} (DATABASE_URL)`,
    );
  } else {
    const started = Date.now();
    const embedded = await startEmbeddedPostgres({
      dataDir: options.dataDir,
      maxConnections: 20,
    });
    databaseUrl = embedded.url;
    stopDatabase = () => embedded.stop();
    logger.log(
      `Database: embedded PostgreSQL (PGlite), data in ${options.dataDir}, ready in ${Date.now() - started} ms. Set DATABASE_URL to use your own server.`,
    );
  }

  let app: INestApplication | undefined;
  try {
    app = await NestFactory.create(
      AppModule.forRoot(databaseUrl, options.schema),
      {
        logger: new QuietStartupLogger(),
      },
    );
    const users = app.get(UsersService);
    if (await users.ensure(DEMO_USERNAME, DEMO_PASSWORD)) {
      logger.log(`Seeded user "${DEMO_USERNAME}"`);
    }
    await app.listen(options.port, '127.0.0.1');
  } catch (error) {
    await app?.close().catch(() => undefined);
    await stopDatabase();
    throw error;
  }
  const address = app.getHttpServer().address() as { port: number };
  const url = `http://localhost:${address.port}`;
  if (options.banner !== false) {
    printBanner(url);
  }
  let stopping: Promise<void> | undefined;
  return {
    app,
    url,
    stop: () =>
      (stopping ??= (async () => {
        await app.close();
        await stopDatabase();
      })()),
  };
}

/** An error whose message says all a user needs (no stack trace). */
export class ExampleStartError extends Error {}

async function ensurePortFree(port: number): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((done, fail) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) =>
      fail(
        error.code === 'EADDRINUSE'
          ? new ExampleStartError(
              `Port ${port} is in use (another \`npm start\`?). Stop that process, or pick another port: PORT=${port === 65535 ? 3001 : port + 1} npm start`,
            )
          : error,
      ),
    );
    probe.listen(port, '127.0.0.1', () => probe.close(() => done()));
  });
}

/** Nest's console logger without the start-up chatter (module and route listings). */
class QuietStartupLogger extends ConsoleLogger {
  private static readonly QUIET = new Set([
    'InstanceLoader',
    'RoutesResolver',
    'RouterExplorer',
    'NestFactory',
    'NestApplication',
  ]);

  override log(message: unknown, context?: string): void {
    if (context && QuietStartupLogger.QUIET.has(context)) return;
    super.log(message, context);
  }
}

function printBanner(url: string): void {
  const lines = [
    '',
    `nestjs-knox example running at ${url}`,
    '',
    'Log in as the demo user (HTTP Basic; a JSON body {"username","password"} works too):',
    `  TOKEN=$(curl -s -X POST -u ${DEMO_USERNAME}:${DEMO_PASSWORD} ${url}/auth/login | sed -E 's/.*"token":"([^"]+)".*/\\1/')`,
    'Call a protected route with the token:',
    `  curl -s ${url}/me -H "Authorization: Token $TOKEN"`,
    'Log out (the token is then refused):',
    `  curl -s -X POST ${url}/auth/logout -H "Authorization: Token $TOKEN" -w '%{http_code}\\n'`,
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
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

/** Defaults from the environment: PORT, DATABASE_URL, KNOX_DATA_DIR. */
export function optionsFromEnv(): ExampleOptions {
  const port = Number(process.env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ExampleStartError(
      `PORT must be a port number; got ${process.env.PORT}`,
    );
  }
  return {
    port,
    databaseUrl: process.env.DATABASE_URL || undefined,
    dataDir: resolve(process.env.KNOX_DATA_DIR ?? '.data/pglite'),
  };
}
