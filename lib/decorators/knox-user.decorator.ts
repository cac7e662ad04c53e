import { createParamDecorator, type ExecutionContext } from '@nestjs/common';

/**
 * The authenticated user (`request.user`), in a handler behind {@link KnoxGuard}.
 *
 * @example
 * @UseGuards(KnoxGuard)
 * @Get('me')
 * me(@KnoxUser() user: User) { return user; }
 */
export const KnoxUser = createParamDecorator(
  (_data: unknown, context: ExecutionContext): unknown =>
    context.switchToHttp().getRequest<{ user?: unknown }>().user,
);

/**
 * The token record that authenticated the request (`request.auth`, a {@link KnoxToken}; never
 * the plaintext, and its digest is left out when serialized).
 *
 * @example
 * @UseGuards(KnoxGuard)
 * @Get('session')
 * session(@KnoxAuth() token: KnoxToken) { return { id: token.id, expiry: token.expiry }; }
 */
export const KnoxAuth = createParamDecorator(
  (_data: unknown, context: ExecutionContext): unknown =>
    context.switchToHttp().getRequest<{ auth?: unknown }>().auth,
);
