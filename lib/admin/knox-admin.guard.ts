import {
  ForbiddenException,
  HttpException,
  Inject,
  Injectable,
  Logger,
  NotFoundException,
  ServiceUnavailableException,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { KNOX_RESOLVED_OPTIONS } from '../knox.constants.js';
import { KnoxMessages } from '../knox.messages.js';
import { KnoxGuard } from '../guard/knox.guard.js';
import type { ResolvedKnoxOptions } from '../options/knox-options.js';
import type { KnoxRequest } from '../knox-request.js';

/**
 * 404 as Nest answers a route that does not exist: the admin's routes without the `admin`
 * option (with `forRootAsync`, whose options come after the routes are mounted).
 */
export function adminRouteMissing(request: KnoxRequest): NotFoundException {
  const { method, url } = request as unknown as { method: string; url: string };
  return new NotFoundException(`Cannot ${method} ${url}`);
}

/**
 * The token admin's API: 404 without the `admin` option; then {@link KnoxGuard} (401 without a
 * valid token; 403 `insufficient_scope` for a token whose abilities list lacks `knox:admin`,
 * which the routes require with `@KnoxAbilities`); then `admin.isAdmin(user)`, asked on every
 * request (403 when it says no; 503 when it throws).
 */
@Injectable()
export class KnoxAdminGuard implements CanActivate {
  private readonly logger = new Logger('KnoxAdmin');

  constructor(
    @Inject(KNOX_RESOLVED_OPTIONS)
    private readonly options: ResolvedKnoxOptions,
    private readonly guard: KnoxGuard,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<KnoxRequest>();
    const admin = this.options.admin;
    if (!admin) {
      throw adminRouteMissing(request);
    }
    await this.guard.canActivate(context);
    let allowed: unknown;
    try {
      allowed = await admin.isAdmin(request.user);
    } catch (error) {
      if (error instanceof HttpException) {
        throw error;
      }
      this.logger.error(
        `admin.isAdmin failed: ${(error as Error)?.message ?? String(error)}`,
        (error as Error)?.stack,
      );
      throw new ServiceUnavailableException(KnoxMessages.UNAVAILABLE);
    }
    if (allowed !== true) {
      throw new ForbiddenException(KnoxMessages.NOT_ADMIN);
    }
    return true;
  }
}
