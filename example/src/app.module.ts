import { Module, type DynamicModule } from '@nestjs/common';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { TypeOrmModule } from '@nestjs/typeorm';
import { KnoxModule } from 'nestjs-knox';
import { AppController } from './app.controller.js';
import { AuthEventsListener } from './auth-events.listener.js';
import { typeOrmOptionsFor } from './database.js';
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

export { DATABASE_TIMEOUTS } from './database.js';

@Module({})
export class AppModule {
  /**
   * The app on the database at `databaseUrl`: `postgres://…` (in `schema`, default `public`),
   * `mysql://…` or `sqlite:<file>`.
   */
  static forRoot(databaseUrl: string, schema?: string): DynamicModule {
    return {
      module: AppModule,
      imports: [
        TypeOrmModule.forRoot(typeOrmOptionsFor(databaseUrl, schema)),
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
