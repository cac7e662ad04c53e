import { Module, type DynamicModule } from '@nestjs/common';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { TypeOrmModule } from '@nestjs/typeorm';
import { KnoxModule } from 'nestjs-knox';
import { AppController } from './app.controller.js';
import { AuthEventsListener } from './auth-events.listener.js';
import { User } from './users/user.entity.js';
import { UsersModule } from './users/users.module.js';
import { UsersService } from './users/users.service.js';

/** Reads a duration in ms from the environment; unset keeps the library's default. */
function envMs(name: string): number | null | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  if (raw === 'null') return null;
  const value = Number(raw);
  if (!Number.isFinite(value)) {
    throw new Error(
      `${name} must be a number of milliseconds or "null"; got ${raw}`,
    );
  }
  return value;
}

/**
 * Timeouts for the `pg` pool (TypeORM hands `extra` to `pg.Pool`), so that a stalled database
 * answers 503 within seconds instead of holding each request for as long as its client waits
 * (minutes, when packets are dropped). SECURITY.md, "Database outages", explains each one.
 */
export const DATABASE_TIMEOUTS = {
  /** A connection attempt that gets no answer (server down, a black hole) fails after 3 s. */
  connectionTimeoutMillis: 3_000,
  /**
   * The server cancels a statement still running after 4 s (waiting on a lock a migration holds,
   * an overloaded server); the connection stays usable. Below `query_timeout`, so the server
   * gets to cancel first whenever it can.
   */
  statement_timeout: 4_000,
  /**
   * The client gives up on a query whose answer has not come after 5 s: packets dropped on an
   * open connection, where the server never saw the query and cannot cancel it.
   */
  query_timeout: 5_000,
  /** TCP keep-alive, so that dead connections are noticed. */
  keepAlive: true,
} as const;

@Module({})
export class AppModule {
  /** The app on the PostgreSQL at `databaseUrl` (in `schema`, default `public`). */
  static forRoot(databaseUrl: string, schema?: string): DynamicModule {
    return {
      module: AppModule,
      imports: [
        TypeOrmModule.forRoot({
          type: 'postgres',
          url: databaseUrl,
          schema,
          autoLoadEntities: true,
          // Fine for an example; a real app runs migrations.
          synchronize: true,
          extra: { ...DATABASE_TIMEOUTS },
        }),
        EventEmitterModule.forRoot(),
        UsersModule,
        KnoxModule.forRootAsync({
          userEntity: User,
          imports: [UsersModule],
          inject: [UsersService],
          useFactory: (users: UsersService) => ({
            validateUser: (username, password) =>
              users.verify(username, password),
            tokenTtl: envMs('KNOX_TOKEN_TTL_MS'),
            autoRefresh: process.env.KNOX_AUTO_REFRESH === 'true',
            tokenLimitPerUser: envMs('KNOX_TOKEN_LIMIT') ?? null,
            tokenLimitPolicy: 'evict-oldest',
            serializeUser: (user: User) => ({
              id: user.id,
              username: user.username,
            }),
            // "Remember me": a 30-day token when the login body asks for it.
            getTokenTtl: ({ body }) =>
              body.rememberMe === true ? 30 * 24 * 60 * 60 * 1000 : undefined,
          }),
        }),
      ],
      controllers: [AppController],
      providers: [AuthEventsListener],
    };
  }
}
