import {
  BadRequestException,
  ForbiddenException,
  InternalServerErrorException,
  UnauthorizedException,
} from '@nestjs/common';
import { KnoxMessages } from '../knox.messages.js';
import { clientInfoOf, type KnoxRequest } from '../knox-request.js';
import type { KnoxToken } from '../store/knox-token.entity.js';
import { missingAbilities, namesExactly } from '../abilities/knox-abilities.js';
import { validateCredentials, type KnoxHttpParts } from './knox-login.js';
import type { KnoxPersonalTokenRequest } from './knox-token-body.js';

/** A request that passed the guard. */
export type KnoxAuthenticatedRequest = KnoxRequest & {
  auth: KnoxToken;
  user: unknown;
};

/**
 * Whether the caller may create this personal access token: 403 for abilities its own token
 * lacks; then the password again, unless its token names `createAbility` (400 without both).
 * Resolves to whether the password was given (`false`: the calling token's ability).
 */
export async function checkMayCreate(
  parts: KnoxHttpParts,
  request: KnoxAuthenticatedRequest,
  response: unknown,
  asked: KnoxPersonalTokenRequest,
  settings: { createAbility: string | null },
): Promise<boolean> {
  const beyond = missingAbilities(request.auth.abilities, asked.abilities);
  if (beyond.length > 0) {
    throw new ForbiddenException(KnoxMessages.ABILITIES_BEYOND_CALLER(beyond));
  }
  if (asked.password !== undefined) {
    await reauthenticate(parts, request, response, asked.password);
    return true;
  }
  if (
    settings.createAbility === null ||
    !namesExactly(request.auth.abilities, settings.createAbility)
  ) {
    throw new BadRequestException(KnoxMessages.PASSWORD_REQUIRED);
  }
  return false;
}

/**
 * Checks the calling user's password again (`validateUser` with `getUsername(user)`),
 * throttled as logins are: 403 when it is wrong or names another user.
 */
async function reauthenticate(
  parts: KnoxHttpParts,
  request: KnoxAuthenticatedRequest,
  response: unknown,
  password: string,
): Promise<void> {
  const username = parts.options.getUsername(request.user);
  if (typeof username !== 'string' || username.length === 0) {
    parts.logger.error(
      'POST tokens: the user has no `username` or `email`; set the `getUsername(user)` option to give validateUser the username.',
    );
    throw new InternalServerErrorException();
  }
  await parts.throttler.hit(username, clientInfoOf(request).ip, response);
  let user: unknown;
  try {
    user = await validateCredentials(parts, { username, password }, request);
  } catch (error) {
    // A wrong password is not a bad token: 403, so that clients keep their token.
    if (error instanceof UnauthorizedException) {
      throw new ForbiddenException(KnoxMessages.WRONG_PASSWORD);
    }
    throw error;
  }
  if (
    String(parts.tokens.userIdOf(user)) !==
    String(parts.tokens.userIdOf(request.user))
  ) {
    throw new ForbiddenException(KnoxMessages.WRONG_PASSWORD);
  }
}
