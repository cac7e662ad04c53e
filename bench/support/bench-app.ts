import 'reflect-metadata';
import {
  Controller,
  Get,
  Module,
  Req,
  UseGuards,
  type INestApplication,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { DataSource, type Logger as TypeOrmLogger } from 'typeorm';
import { KnoxGuard, KnoxModule, KnoxUser } from 'nestjs-knox';
import { BENCH_TOKEN_TABLE, BenchUser } from './bench-user.entity.js';
import { Knox5EmulationGuard } from './knox5-emulation.guard.js';

/** lastUsedAt is written at most once per token per this interval (see the report's notes). */
export const LAST_USED_UPDATE_INTERVAL = 60 * 60 * 1000;

/** Counts the statements the app sends through TypeORM (transaction control included). */
export class QueryCounter implements TypeOrmLogger {
  queries = 0;
  writes = 0;

  logQuery(sql: string): void {
    this.queries++;
    if (/^\s*(INSERT|UPDATE|DELETE)\b/i.test(sql)) {
      this.writes++;
    }
  }
  logQueryError(): void {}
  logQuerySlow(): void {}
  logSchemaBuild(): void {}
  logMigration(): void {}
  log(): void {}

  reset(): void {
    this.queries = 0;
    this.writes = 0;
  }
}

@Controller()
class BenchController {
  /** The framework's floor: no guard, no database. */
  @Get('public')
  open() {
    return { ok: true };
  }

  /** nestjs-knox's guard. */
  @UseGuards(KnoxGuard)
  @Get('me')
  me(@KnoxUser() user: BenchUser) {
    return { id: user.id, username: user.username };
  }

  /** The same route behind the django-rest-knox 5 emulation (see Knox5EmulationGuard). */
  @UseGuards(Knox5EmulationGuard)
  @Get('knox5/me')
  meKnox5(@Req() request: { user: BenchUser }) {
    return { id: request.user.id, username: request.user.username };
  }
}

export interface BenchApp {
  app: INestApplication;
  dataSource: DataSource;
  counter: QueryCounter;
  port: number;
}

/** Boots the app on Express, listening on 127.0.0.1 on a free port. */
export async function bootBenchApp(
  databaseUrl: string,
  poolSize: number,
): Promise<BenchApp> {
  const counter = new QueryCounter();

  @Module({
    imports: [
      TypeOrmModule.forRoot({
        type: 'postgres',
        url: databaseUrl,
        entities: [BenchUser],
        autoLoadEntities: true,
        synchronize: true,
        poolSize,
        retryAttempts: 0,
        logging: ['query'],
        logger: counter,
      }),
      KnoxModule.forRootAsync({
        userEntity: BenchUser,
        tableName: BENCH_TOKEN_TABLE,
        inject: [getDataSourceToken()],
        useFactory: (dataSource: DataSource) => ({
          // A plain lookup: the bench measures token handling, not password hashing.
          validateUser: async (username: string, password: string) => {
            const user = await dataSource
              .getRepository(BenchUser)
              .findOneBy({ username });
            return user && user.password === password ? user : null;
          },
          loginThrottle: false as const,
          lastUsedUpdateInterval: LAST_USED_UPDATE_INTERVAL,
        }),
      }),
    ],
    controllers: [BenchController],
    providers: [Knox5EmulationGuard],
  })
  class BenchAppModule {}

  const app = await NestFactory.create(BenchAppModule, {
    logger: false,
    abortOnError: false,
  });
  await app.listen(0, '127.0.0.1');
  const server = app.getHttpServer() as Server;
  // Idle keep-alive sockets between scenarios must not be closed under the client's feet.
  server.keepAliveTimeout = 120_000;
  const port = (server.address() as AddressInfo).port;
  return { app, dataSource: app.get(DataSource), counter, port };
}
