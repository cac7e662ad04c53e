import { checkFunction } from './knox-option-checks.js';
import { KnoxOptionsError } from './knox-options-error.js';
import { resolveTable, type KnoxOptionTable } from './knox-option-table.js';

/**
 * `admin: { … }`: the token admin (`{path}/admin`, docs/admin.md), an operator's API and page to
 * find and revoke any user's tokens. Without it no admin route exists (404).
 *
 * @example
 * admin: { isAdmin: (user) => user.isStaff, describeUser: (user) => user.email }
 */
export interface KnoxAdminOptions<User = any> {
  /**
   * Whether `user` may use the admin. Asked on every admin request (never cached in a token);
   * `false` answers 403. A token that carries an abilities list must also hold `knox:admin`.
   */
  isAdmin(user: User): boolean | Promise<boolean>;
  /**
   * The label the admin shows for a token's user (and that its search matches).
   * @default `user.username ?? user.email ?? String(id)`
   */
  describeUser?(user: User): string;
  /**
   * The user entity's properties the admin's `search` matches (case-insensitive substring), so
   * an operator can find a user's tokens by the label: list the ones `describeUser` shows.
   * @default those of `username` and `email` the user entity has
   */
  searchUserColumns?: string[];
}

/** `admin` with its defaults applied. */
export interface ResolvedKnoxAdmin {
  isAdmin(user: unknown): boolean | Promise<boolean>;
  /** `undefined`: the default label (see {@link KnoxAdminOptions.describeUser}). */
  describeUser?: (user: unknown) => string;
  /** `undefined`: the default columns, read from the user entity's metadata. */
  searchUserColumns?: string[];
}

/** The rows of `admin: { … }`. */
export const ADMIN_OPTIONS: KnoxOptionTable = {
  isAdmin: {
    kind: 'function',
    required: true,
    check: (value, _r, name) => {
      if (typeof value !== 'function') {
        throw new KnoxOptionsError(
          `\`${name}\` is required and must be a function (user) => boolean, e.g. admin: { isAdmin: (user) => user.isStaff }.`,
        );
      }
      return value;
    },
  },
  describeUser: {
    kind: 'function',
    check: (value, _r, name) => checkFunction(name, value),
  },
  searchUserColumns: {
    kind: 'list',
    check: (value, _r, name) => {
      if (
        !Array.isArray(value) ||
        value.some((column) => typeof column !== 'string' || column === '')
      ) {
        throw new KnoxOptionsError(
          `\`${name}\` must be a list of the user entity's property names, e.g. ['username', 'email']; got ${JSON.stringify(value)}.`,
        );
      }
      return [...(value as string[])];
    },
  },
};

/** `admin`: an object with `isAdmin`, or `undefined` / `false` for no admin (`null`). */
export function checkAdmin(value: unknown): ResolvedKnoxAdmin | null {
  if (value === false || value === undefined || value === null) {
    return null;
  }
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new KnoxOptionsError(
      `\`admin\` must be an object ({ isAdmin, describeUser?, searchUserColumns? }) or false; got ${typeof value}.`,
    );
  }
  return resolveTable(
    ADMIN_OPTIONS,
    value as Record<string, unknown>,
    'admin.',
  ) as unknown as ResolvedKnoxAdmin;
}
