/**
 * What a token may do: its abilities, and the rules that match them. Pure functions, no I/O.
 *
 * - A token's abilities are a list of strings, or `null` for every ability (tokens issued
 *   without abilities, and rows django-rest-knox wrote).
 * - `'*'` grants every ability.
 * - An ability ending in `:*` grants every ability that starts with what comes before the `*`:
 *   `posts:*` grants `posts:read`, `posts:comments:write` and `posts:*` itself, but not `posts`
 *   nor `postsx:read`.
 * - Anything else grants exactly itself (case-sensitive).
 */

/** The longest ability name. */
export const MAX_ABILITY_LENGTH = 100;
/** The most abilities one token may carry. */
export const MAX_ABILITIES = 64;

/**
 * One ability: `*`, or segments of letters, digits and `_ . - /` separated by `:`, the last of
 * which may be `*`. Fits an RFC 6750 `scope` value as it is.
 */
const ABILITY = /^(?:\*|[A-Za-z0-9_./-]+(?::[A-Za-z0-9_./-]+)*(?::\*)?)$/;

/** Whether `value` is a well-formed ability name. */
export function isAbility(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.length <= MAX_ABILITY_LENGTH &&
    ABILITY.test(value)
  );
}

/** What an ability name must look like, for messages. */
export const ABILITY_RULE = `1 to ${MAX_ABILITY_LENGTH} characters: letters, digits and _ . - / in segments separated by ":", optionally ending in ":*"; or "*" alone`;

/**
 * The abilities as given, checked and without duplicates (first occurrence kept), or a message
 * saying what is wrong (`what` names the value, e.g. "`abilities`").
 */
export function parseAbilities(
  value: unknown,
  what: string,
): { abilities: string[] } | { error: string } {
  if (!Array.isArray(value)) {
    return { error: `${what} must be an array of ability names.` };
  }
  if (value.length > MAX_ABILITIES) {
    return {
      error: `${what} may hold at most ${MAX_ABILITIES} abilities; got ${value.length}.`,
    };
  }
  const bad = value.findIndex((item) => !isAbility(item));
  if (bad !== -1) {
    return {
      error: `${what}[${bad}] is not an ability name (${ABILITY_RULE}).`,
    };
  }
  return { abilities: [...new Set(value as string[])] };
}

/** Whether abilities `held` (`null`: all) grant `ability`. */
export function grants(
  held: readonly string[] | null | undefined,
  ability: string,
): boolean {
  if (held === null || held === undefined) {
    return true;
  }
  return held.some(
    (h) =>
      h === '*' ||
      h === ability ||
      (h.endsWith(':*') && ability.startsWith(h.slice(0, -1))),
  );
}

/** The abilities of `wanted` that `held` does not grant (empty when all are granted). */
export function missingAbilities(
  held: readonly string[] | null | undefined,
  wanted: readonly string[],
): string[] {
  return wanted.filter((ability) => !grants(held, ability));
}

/** A route's requirement: all of its abilities, or any one of them. */
export interface KnoxAbilityRequirement {
  mode: 'all' | 'any';
  abilities: readonly string[];
}

/** The first requirement that `held` does not meet, if any. */
export function unmetRequirement(
  held: readonly string[] | null | undefined,
  requirements: readonly KnoxAbilityRequirement[],
): KnoxAbilityRequirement | undefined {
  return requirements.find((requirement) =>
    requirement.mode === 'all'
      ? missingAbilities(held, requirement.abilities).length > 0
      : !requirement.abilities.some((ability) => grants(held, ability)),
  );
}

/**
 * Whether `held` names `ability` itself: the test for the one ability that wildcards and
 * `null` never grant, the one that lets a token create tokens (`personalAccessTokens.createAbility`).
 */
export function namesExactly(
  held: readonly string[] | null | undefined,
  ability: string,
): boolean {
  return Array.isArray(held) && held.includes(ability);
}
