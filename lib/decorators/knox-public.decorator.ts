import { SetMetadata } from '@nestjs/common';
import { KNOX_PUBLIC_KEY } from '../knox.constants.js';

/**
 * Marks a route or controller as public: {@link KnoxGuard} lets it through without a token.
 * Meant for apps that install the guard globally as `APP_GUARD`.
 *
 * @example
 * @KnoxPublic()
 * @Get('health')
 * health() { return { ok: true }; }
 */
export const KnoxPublic = (): MethodDecorator & ClassDecorator =>
  SetMetadata(KNOX_PUBLIC_KEY, true);
