import { BadRequestException } from '@nestjs/common';
import {
  missingAbilities,
  parseAbilities,
} from '../abilities/knox-abilities.js';
import { KnoxMessages } from '../knox.messages.js';
import { readLoginBody, readTokenName } from './knox-login-body.js';

/**
 * Reading the bodies of the token routes: the `abilities` of a login, `POST {path}/tokens` and
 * `PATCH {path}/tokens/:id`. Pure functions of their input; each failure is a 400 naming the
 * field.
 */

/** What `POST {path}/tokens` asks for. */
export interface KnoxPersonalTokenRequest {
  name: string;
  abilities: string[];
  /** The lifetime in ms; `null` never expires. */
  ttl: number | null;
  /** The account password, for re-authentication; `undefined` when not given. */
  password: string | undefined;
}

const MAX_PASSWORD = 1024;

/**
 * The `abilities` a login body asks for: `undefined` when it asks for none (absent or `null`);
 * 400 when `allowed` is `null` (the app lets no login choose) or when it asks for an ability
 * `allowed` does not grant.
 */
export function readLoginAbilities(
  body: Record<string, unknown>,
  allowed: readonly string[] | null,
): string[] | undefined {
  if (body.abilities === undefined || body.abilities === null) {
    return undefined;
  }
  if (allowed === null) {
    throw new BadRequestException(KnoxMessages.LOGIN_ABILITIES_OFF);
  }
  const requested = abilitiesOf(body.abilities);
  const beyond = missingAbilities(allowed, requested);
  if (beyond.length > 0) {
    throw new BadRequestException(
      KnoxMessages.LOGIN_ABILITIES_NOT_ALLOWED(beyond),
    );
  }
  return requested;
}

/**
 * The body of `POST {path}/tokens`: `{ name, abilities, password?, ttl? }`. `ttl` (ms) defaults
 * to `maxTtl`; more than `maxTtl`, or `null` while there is a cap, is a 400.
 */
export function readPersonalTokenBody(
  raw: unknown,
  nameMaxLength: number,
  maxTtl: number | null,
): KnoxPersonalTokenRequest {
  const body = readLoginBody(raw);
  const name = readTokenName(body, nameMaxLength);
  if (name === null) {
    throw new BadRequestException(
      `\`name\` is required: a string of 1 to ${nameMaxLength} printable characters that says what the token is for.`,
    );
  }
  if (body.abilities === undefined) {
    throw new BadRequestException(
      '`abilities` is required: the list of what the token may do (e.g. ["posts:read"]).',
    );
  }
  const abilities = abilitiesOf(body.abilities);
  return {
    name,
    abilities,
    ttl: readTtl(body.ttl, maxTtl),
    password: readPassword(body.password),
  };
}

/** The `name` of `PATCH {path}/tokens/:id`: required, `null` clears it. */
export function readRename(raw: unknown, nameMaxLength: number): string | null {
  const body = readLoginBody(raw);
  if (!('name' in body)) {
    throw new BadRequestException(
      '`name` is required (a string, or null to clear the name).',
    );
  }
  return readTokenName(body, nameMaxLength);
}

function abilitiesOf(value: unknown): string[] {
  const parsed = parseAbilities(value, '`abilities`');
  if ('error' in parsed) {
    throw new BadRequestException(parsed.error);
  }
  return parsed.abilities;
}

function readTtl(value: unknown, maxTtl: number | null): number | null {
  if (value === undefined) {
    return maxTtl;
  }
  const cap =
    maxTtl === null ? '' : ` (at most ${maxTtl}, the longest allowed here)`;
  if (value === null) {
    if (maxTtl !== null) {
      throw new BadRequestException(
        `\`ttl\` must be a number of milliseconds${cap}; tokens that never expire are not allowed here.`,
      );
    }
    return null;
  }
  if (
    typeof value !== 'number' ||
    !Number.isSafeInteger(value) ||
    value < 1 ||
    (maxTtl !== null && value > maxTtl)
  ) {
    throw new BadRequestException(
      `\`ttl\` must be a whole number of milliseconds >= 1${cap}${maxTtl === null ? ', or null (never expires)' : ''}.`,
    );
  }
  return value;
}

function readPassword(value: unknown): string | undefined {
  if (value === undefined) {
    return undefined;
  }
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    value.length > MAX_PASSWORD ||
    value.includes('\u0000')
  ) {
    throw new BadRequestException(
      `\`password\` must be a string of 1 to ${MAX_PASSWORD} characters without NUL.`,
    );
  }
  return value;
}
