import 'reflect-metadata';
import {
  Controller,
  Get,
  Injectable,
  Module,
  Req,
  UnauthorizedException,
  UseGuards,
  type CanActivate,
  type ExecutionContext,
  type INestApplication,
} from '@nestjs/common';
import { ModuleRef, NestFactory } from '@nestjs/core';
import { JwtModule, JwtService } from '@nestjs/jwt';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import {
  InjectDataSource,
  TypeOrmModule,
  getDataSourceToken,
} from '@nestjs/typeorm';
import { createHash, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { DataSource, type Repository } from 'typeorm';
import {
  KnoxGuard,
  KnoxModule,
  KnoxTokenService,
  KnoxUser,
  type KnoxCacheOptions,
  type KnoxToken,
} from 'nestjs-knox';
import {
  BENCH_TOKEN_TABLE,
  BenchToken,
  BenchUser,
} from './bench-user.entity.js';
import { Knox5EmulationGuard } from './knox5-emulation.guard.js';
import { typeOrmOptions } from './bench-db.js';

/** lastUsedAt is written at most once per token per this interval (see the report's notes). */
export const LAST_USED_UPDATE_INTERVAL = 60 * 60 * 1000;

export const sha512 = (token: string) =>
  createHash('sha512').update(token, 'utf8').digest('hex');

interface BenchRequest {
  headers: Record<string, string | string[] | undefined>;
  user?: unknown;
}

function bearerOf(request: BenchRequest, scheme: string): string {
  const header = request.headers.authorization;
  const prefix = `${scheme} `;
  if (typeof header !== 'string' || !header.startsWith(prefix)) {
    throw new UnauthorizedException();
  }
  return header.slice(prefix.length);
}

/** digest -> user, filled once after seeding: what any cache could at best do per request. */
export const CEILING_MAP = new Map<string, { id: number; username: string }>();

/**
 * The ceiling of any cached guard: SHA-512 of the token and a lookup in an in-process Map
 * (no expiry, no revocation, no LRU bookkeeping).
 */
@Injectable()
class CeilingGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<BenchRequest>();
    const user = CEILING_MAP.get(sha512(bearerOf(request, 'Token')));
    if (!user) {
      throw new UnauthorizedException();
    }
    request.user = user;
    return true;
  }
}

/** `@nestjs/jwt` verifying HS256 with a KeyObject secret, as its docs suggest. */
@Injectable()
class JwtGuard implements CanActivate {
  constructor(private readonly jwt: JwtService) {}
  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<BenchRequest>();
    try {
      const payload = await this.jwt.verifyAsync<{
        sub: number;
        username: string;
      }>(bearerOf(request, 'Bearer'));
      request.user = { id: payload.sub, username: payload.username };
    } catch {
      throw new UnauthorizedException();
    }
    return true;
  }
}

/**
 * A hand-written TypeORM bearer guard, the way such guards are commonly written: `findOne` by the
 * token's hash with the `user` relation, then an expiry check.
 */
@Injectable()
class TypeOrmBearerGuard implements CanActivate {
  private readonly tokens: Repository<KnoxToken>;
  constructor(@InjectDataSource() dataSource: DataSource) {
    this.tokens = dataSource.getRepository(BenchToken);
  }
  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<BenchRequest>();
    const token = await this.tokens.findOne({
      where: { digest: sha512(bearerOf(request, 'Bearer')) },
      relations: { user: true },
    });
    if (!token || (token.expiry && token.expiry.getTime() < Date.now())) {
      throw new UnauthorizedException();
    }
    request.user = token.user;
    return true;
  }
}

/**
 * Experiment (issue 10): the uncached lookup of KnoxTokenStore.findByDigests, as it is (TypeORM's
 * query builder, innerJoinAndSelect, getOne) …
 */
@Injectable()
class QueryBuilderLookupGuard implements CanActivate {
  private readonly tokens: Repository<KnoxToken>;
  constructor(@InjectDataSource() dataSource: DataSource) {
    this.tokens = dataSource.getRepository(BenchToken);
  }
  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<BenchRequest>();
    const token = await this.tokens
      .createQueryBuilder('token')
      .innerJoinAndSelect('token.user', 'user')
      .where('token.digest = :digest', {
        digest: sha512(bearerOf(request, 'Token')),
      })
      .getOne();
    if (!token || (token.expiry && token.expiry.getTime() < Date.now())) {
      throw new UnauthorizedException();
    }
    request.user = token.user;
    return true;
  }
}

/**
 * … and the lookup as the library now sends it: `KnoxTokenStore.findByDigests`, a named prepared
 * statement generated once from the same query builder, hydrated by TypeORM's transformer.
 */
interface KnoxStoreLookup {
  findByDigests(digests: string[]): Promise<KnoxToken<BenchUser>[]>;
}

@Injectable()
class PreparedLookupGuard implements CanActivate {
  constructor(private readonly moduleRef: ModuleRef) {}
  private store?: KnoxStoreLookup;
  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<BenchRequest>();
    // Not public API: the service's store (KnoxTokenStore is not exported).
    this.store ??= (
      this.moduleRef.get(KnoxTokenService, { strict: false }) as unknown as {
        store: KnoxStoreLookup;
      }
    ).store;
    const [token] = await this.store.findByDigests([
      sha512(bearerOf(request, 'Token')),
    ]);
    if (!token || (token.expiry && token.expiry.getTime() < Date.now())) {
      throw new UnauthorizedException();
    }
    request.user = token.user;
    return true;
  }
}

@Controller()
class BenchController {
  @UseGuards(QueryBuilderLookupGuard)
  @Get('lookup/query-builder')
  queryBuilder(@Req() request: { user: BenchUser }) {
    return { id: request.user.id, username: request.user.username };
  }

  @UseGuards(PreparedLookupGuard)
  @Get('lookup/prepared')
  prepared(@Req() request: { user: BenchUser }) {
    return { id: request.user.id, username: request.user.username };
  }

  /** The framework's floor: no guard, no database. */
  @Get('public')
  open() {
    return { ok: true };
  }

  @UseGuards(CeilingGuard)
  @Get('ceiling/me')
  ceiling(@Req() request: { user: BenchUser }) {
    return { id: request.user.id, username: request.user.username };
  }

  @UseGuards(JwtGuard)
  @Get('jwt/me')
  jwt(@Req() request: { user: BenchUser }) {
    return { id: request.user.id, username: request.user.username };
  }

  @UseGuards(TypeOrmBearerGuard)
  @Get('bearer/me')
  bearer(@Req() request: { user: BenchUser }) {
    return { id: request.user.id, username: request.user.username };
  }

  /** nestjs-knox's guard (cached or not, as the app was booted). */
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
  port: number;
}

export interface BenchAppOptions {
  /** postgres://…, mysql://… or sqlite:<file> (see bench-db.ts). */
  databaseUrl: string;
  poolSize: number;
  platform: 'express' | 'fastify';
  cache: false | KnoxCacheOptions;
  jwtSecret: KeyObject;
  /** KnoxModule's token table (the bench's own by default). */
  tableName?: string;
}

/** Boots one bench app, listening on 127.0.0.1 on a free port. */
export async function bootBenchApp(
  options: BenchAppOptions,
): Promise<BenchApp> {
  @Module({
    imports: [
      TypeOrmModule.forRoot({
        ...(typeOrmOptions(options.databaseUrl, options.poolSize) as {
          type: 'postgres';
        }),
        entities: [BenchUser, BenchToken],
        autoLoadEntities: true,
        synchronize: true,
        retryAttempts: 0,
      }),
      JwtModule.register({
        secret: options.jwtSecret as never,
        signOptions: { algorithm: 'HS256' },
        verifyOptions: { algorithms: ['HS256'] },
      }),
      KnoxModule.forRootAsync({
        userEntity: BenchUser,
        tableName: options.tableName ?? BENCH_TOKEN_TABLE,
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
          cache: options.cache,
        }),
      }),
    ],
    controllers: [BenchController],
    providers: [
      Knox5EmulationGuard,
      CeilingGuard,
      JwtGuard,
      TypeOrmBearerGuard,
      QueryBuilderLookupGuard,
      PreparedLookupGuard,
    ],
  })
  class BenchAppModule {}

  const app =
    options.platform === 'fastify'
      ? await NestFactory.create(BenchAppModule, new FastifyAdapter(), {
          logger: ['error'],
          abortOnError: false,
        })
      : await NestFactory.create(BenchAppModule, {
          logger: ['error'],
          abortOnError: false,
        });
  await app.listen(0, '127.0.0.1');
  const server = app.getHttpServer() as Server;
  // Idle keep-alive sockets between scenarios must not be closed under the client's feet.
  server.keepAliveTimeout = 120_000;
  const port = (server.address() as AddressInfo).port;
  return { app, dataSource: app.get(DataSource), port };
}

/** Signs the JWT the bench presents for a user. */
export function signJwt(app: BenchApp, user: { id: number; username: string }) {
  return app.app
    .get(JwtService)
    .sign({ sub: user.id, username: user.username });
}
