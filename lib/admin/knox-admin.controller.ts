import {
  BadRequestException,
  Controller,
  Delete,
  Get,
  Header,
  HttpCode,
  Inject,
  Injectable,
  NotFoundException,
  Param,
  Post,
  Query,
  Req,
  Res,
  UseGuards,
  type Type,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { KNOX_RESOLVED_OPTIONS } from '../knox.constants.js';
import { KnoxMessages } from '../knox.messages.js';
import { KnoxAbilities } from '../abilities/knox-abilities.decorator.js';
import { KnoxPublic } from '../decorators/knox-public.decorator.js';
import { KnoxTokenService } from '../knox-token.service.js';
import { clientInfoOf, type KnoxRequest } from '../knox-request.js';
import { knoxRoutePath } from '../http/knox-method-not-allowed.js';
import type { ResolvedKnoxOptions } from '../options/knox-options.js';
import { KnoxAdminGuard, adminRouteMissing } from './knox-admin.guard.js';
import {
  KNOX_ADMIN_ASSETS,
  KNOX_ADMIN_PAGE_HEADERS,
  adminAsset,
  adminPageHtml,
  type KnoxAdminAsset,
} from './knox-admin-page.js';
import {
  isTokenId,
  readAdminQueryString,
} from '../admin-tokens/knox-admin-query.js';
import type { KnoxAdminTokenPage } from '../admin-tokens/knox-admin-tokens.js';

/** The ability a token with an abilities list needs for the admin's API. */
export const KNOX_ADMIN_ABILITY = 'knox:admin';

type AdminRequest = KnoxRequest & { url: string };

/**
 * The token admin: the page (`GET {path}/admin` and its two files) and the JSON API under
 * `{path}/admin` (docs/admin.md). Mounted by {@link KnoxModule} with the `admin` option;
 * every API route runs {@link KnoxAdminGuard} (404 without the option, 401, 403).
 */
@Injectable()
export class KnoxAdminController {
  @Inject(HttpAdapterHost)
  protected readonly adapterHost: HttpAdapterHost;

  constructor(
    protected readonly tokens: KnoxTokenService,
    @Inject(KNOX_RESOLVED_OPTIONS)
    protected readonly options: ResolvedKnoxOptions,
  ) {}

  /** `GET admin`: the page. Public: it signs in through `POST {path}/login` itself. */
  @Get()
  @KnoxPublic()
  @Header('Content-Type', 'text/html; charset=utf-8')
  page(@Req() request: AdminRequest, @Res({ passthrough: true }) res: unknown) {
    this.pageHeaders(request, res);
    return adminPageHtml(request.url);
  }

  /** `GET admin/knox-admin.js`: the page's script. */
  @Get('knox-admin.js')
  @KnoxPublic()
  script(
    @Req() request: AdminRequest,
    @Res({ passthrough: true }) res: unknown,
  ) {
    return this.asset(request, res, 'knox-admin.js');
  }

  /** `GET admin/knox-admin.css`: the page's style. */
  @Get('knox-admin.css')
  @KnoxPublic()
  style(
    @Req() request: AdminRequest,
    @Res({ passthrough: true }) res: unknown,
  ) {
    return this.asset(request, res, 'knox-admin.css');
  }

  /** `GET admin/knox-admin.svg`: the page's icon. */
  @Get('knox-admin.svg')
  @KnoxPublic()
  icon(@Req() request: AdminRequest, @Res({ passthrough: true }) res: unknown) {
    return this.asset(request, res, 'knox-admin.svg');
  }

  /** `GET admin/tokens`: one page of every user's tokens. */
  @Get('tokens')
  @UseGuards(KnoxAdminGuard)
  @KnoxAbilities(KNOX_ADMIN_ABILITY)
  @Header('Cache-Control', 'no-store')
  list(@Query() query: Record<string, unknown>): Promise<KnoxAdminTokenPage> {
    return this.tokens.findTokens(readAdminQueryString(query));
  }

  /** `DELETE admin/tokens/:id`: revokes one token, whoever owns it; 404 for an unknown id. */
  @Delete('tokens/:id')
  @UseGuards(KnoxAdminGuard)
  @KnoxAbilities(KNOX_ADMIN_ABILITY)
  @HttpCode(204)
  async revokeOne(
    @Param('id') id: string,
    @Req() request: KnoxRequest,
  ): Promise<void> {
    if (!isTokenId(id)) {
      throw new NotFoundException(KnoxMessages.TOKEN_NOT_FOUND);
    }
    const revoked = await this.tokens.revokeTokens([id], this.actor(request));
    if (revoked === 0) {
      throw new NotFoundException(KnoxMessages.TOKEN_NOT_FOUND);
    }
  }

  /** `POST admin/tokens/revoke` with `{ ids }`: revokes many; `{ revoked }` says how many. */
  @Post('tokens/revoke')
  @UseGuards(KnoxAdminGuard)
  @KnoxAbilities(KNOX_ADMIN_ABILITY)
  @HttpCode(200)
  async revokeMany(@Req() request: KnoxRequest): Promise<{ revoked: number }> {
    const body = request.body as { ids?: unknown } | undefined;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new BadRequestException(
        "The body must be a JSON object: { ids: ['<token id>', …] }.",
      );
    }
    const revoked = await this.tokens.revokeTokens(
      body.ids as string[],
      this.actor(request),
    );
    return { revoked };
  }

  /** `POST admin/users/:userId/logoutall`: revokes every token of the user. */
  @Post('users/:userId/logoutall')
  @UseGuards(KnoxAdminGuard)
  @KnoxAbilities(KNOX_ADMIN_ABILITY)
  @HttpCode(204)
  async logoutUser(
    @Param('userId') userId: string,
    @Req() request: KnoxRequest,
  ): Promise<void> {
    // `users//logoutall` names no user: a 404 like any path without its route, on every adapter
    // (older Fastify routers match an empty parameter that Express and newer Fastify do not).
    if (userId === '') {
      throw new NotFoundException(KnoxMessages.ADMIN_USER_ID_MISSING);
    }
    await this.tokens.logoutUserEverywhere(userId, this.actor(request));
  }

  /** Who is acting (the events' `actorId`) and from where. */
  private actor(request: KnoxRequest) {
    return {
      ...clientInfoOf(request),
      actorId: this.tokens.userIdOf(request.user),
    };
  }

  private asset(request: AdminRequest, res: unknown, name: KnoxAdminAsset) {
    this.pageHeaders(request, res);
    this.adapterHost.httpAdapter.setHeader(
      res,
      'Content-Type',
      KNOX_ADMIN_ASSETS[name],
    );
    return adminAsset(name);
  }

  /** 404 without the `admin` option; else the page's security headers. */
  private pageHeaders(request: AdminRequest, res: unknown): void {
    if (!this.options.admin) {
      throw adminRouteMissing(request);
    }
    for (const [name, value] of Object.entries(KNOX_ADMIN_PAGE_HEADERS)) {
      this.adapterHost.httpAdapter.setHeader(res, name, value);
    }
  }
}

/** The admin controller class mounted at `{path}/admin`. */
export function createKnoxAdminController(
  path: string,
): Type<KnoxAdminController> {
  @Controller(knoxRoutePath(path, 'admin'))
  class KnoxAdminRoutesController extends KnoxAdminController {}
  return KnoxAdminRoutesController;
}
