import {
  ABILITY_RULE,
  isAbility,
  type KnoxAbilityRequirement,
} from './knox-abilities.js';

/** The metadata key under which routes and controllers keep their ability requirements. */
export const KNOX_ABILITIES_KEY = 'knox:abilities';

function requirement(
  decorator: string,
  mode: KnoxAbilityRequirement['mode'],
  abilities: string[],
): MethodDecorator & ClassDecorator {
  if (abilities.length === 0) {
    throw new Error(`@${decorator}() needs at least one ability.`);
  }
  abilities.forEach((ability, index) => {
    if (!isAbility(ability)) {
      throw new Error(
        `@${decorator}(): argument ${index} (${JSON.stringify(ability)}) is not an ability name (${ABILITY_RULE}).`,
      );
    }
  });
  const added: KnoxAbilityRequirement = {
    mode,
    abilities: Object.freeze([...abilities]),
  };
  return (target: object, _key?: string | symbol, descriptor?: unknown) => {
    // Stacked decorators add up (a controller's and a route's both apply), so the list grows
    // rather than being replaced as SetMetadata would. Decorators run bottom-up: prepending
    // keeps the list in reading order, which decides the requirement a 403 names.
    const where =
      (descriptor as PropertyDescriptor | undefined)?.value ?? target;
    Reflect.defineMetadata(
      KNOX_ABILITIES_KEY,
      [added, ...ownRequirements(where)],
      where,
    );
    return descriptor as never;
  };
}

/**
 * Requires the token to hold **every** listed ability. On a controller it applies to each of
 * its routes; on a route too, both apply (stacked decorators add up). {@link KnoxGuard} checks
 * it after authenticating, with no extra query; a token that lacks one is answered 403 with
 * `WWW-Authenticate: Token error="insufficient_scope", scope="…"`. A token with abilities
 * `null` (issued without any, or written by django-rest-knox) holds them all.
 *
 * @example
 * @UseGuards(KnoxGuard)
 * @KnoxAbilities('posts:write')
 * @Post('posts')
 * create(@Body() post: PostDto) { … }
 */
export const KnoxAbilities = (
  ...abilities: string[]
): MethodDecorator & ClassDecorator =>
  requirement('KnoxAbilities', 'all', abilities);

/**
 * Requires the token to hold **at least one** of the listed abilities (Laravel Sanctum's
 * `ability` middleware). Combines with {@link KnoxAbilities}: every decorator on the route and
 * its controller must be satisfied.
 *
 * @example
 * @KnoxAnyAbility('posts:read', 'posts:admin')
 * @Get('posts')
 * list() { … }
 */
export const KnoxAnyAbility = (
  ...abilities: string[]
): MethodDecorator & ClassDecorator =>
  requirement('KnoxAnyAbility', 'any', abilities);

function ownRequirements(where: object): KnoxAbilityRequirement[] {
  return (
    (Reflect.getOwnMetadata(KNOX_ABILITIES_KEY, where) as
      KnoxAbilityRequirement[] | undefined) ?? []
  );
}

/**
 * The requirements of a route, in reading order: its controller's (a parent class's first),
 * then its own.
 */
export function abilityRequirementsOf(
  handler: object,
  controller: object,
): KnoxAbilityRequirement[] {
  const classes: object[] = [];
  for (
    let c: object | null = controller;
    c && c !== Function.prototype;
    c = Object.getPrototypeOf(c) as object | null
  ) {
    classes.unshift(c);
  }
  return [...classes.flatMap(ownRequirements), ...ownRequirements(handler)];
}
