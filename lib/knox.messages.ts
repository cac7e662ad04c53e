/**
 * The messages the library answers with: the 401s as django-rest-knox words them, and the
 * library's own. Kept apart so that any room can name them without importing the service.
 */
export const KnoxMessages = {
  INVALID_TOKEN: 'Invalid token.',
  USER_INACTIVE: 'User inactive or deleted.',
  NOT_PROVIDED: 'Authentication credentials were not provided.',
  NO_CREDENTIALS: 'Invalid token header. No credentials provided.',
  SPACES: 'Invalid token header. Token string should not contain spaces.',
  MALFORMED_HEADER: 'Invalid token header.',
  LIMIT_EXCEEDED: 'Maximum amount of tokens allowed per user exceeded.',
  UNAVAILABLE:
    'The authentication service is temporarily unavailable. Please retry shortly.',
  TOKEN_NOT_FOUND: 'Token not found.',
  /** 403 from the token admin: `admin.isAdmin(user)` said no. */
  NOT_ADMIN: 'This account may not use the token admin.',
  /** 404 from the token admin: `POST admin/users//logoutall` names no user. */
  ADMIN_USER_ID_MISSING:
    'No user named: POST admin/users/:userId/logoutall takes the user id in the path.',
  /** 401 from `POST login`: the credentials do not check out. */
  INVALID_CREDENTIALS: 'Invalid username/password.',
  /** 401 from `POST login`: `Authorization: Basic` without credentials. */
  BASIC_NO_CREDENTIALS: 'Invalid basic header. No credentials provided.',
  /** 401 from `POST login`: `Authorization: Basic` with more than one credentials string. */
  BASIC_SPACES:
    'Invalid basic header. Credentials string should not contain spaces.',
  /** 401 from `POST login`: `Authorization: Basic` credentials that are not base64 `user:password`. */
  BASIC_BAD_BASE64:
    'Invalid basic header. Credentials not correctly base64 encoded.',
  /** 400 from the routes that read a body: it is not a JSON object. */
  BODY_NOT_OBJECT: 'The request body must be a JSON object.',
  /** 403 from `KnoxGuard`: the token lacks an ability the route requires (`@KnoxAbilities`). */
  MISSING_ABILITIES: (abilities: readonly string[]): string =>
    `This token lacks the ${abilities.length === 1 ? 'ability' : 'abilities'} ${quoted(abilities)} required here.`,
  /** 403 from `KnoxGuard`: the token holds none of the abilities of `@KnoxAnyAbility`. */
  MISSING_ANY_ABILITY: (abilities: readonly string[]): string =>
    `This token needs one of the abilities ${quoted(abilities)} here.`,
  /** 403 from `POST tokens`: the new token would get abilities the calling token lacks. */
  ABILITIES_BEYOND_CALLER: (abilities: readonly string[]): string =>
    `A token can only be given abilities the token creating it holds; this one lacks ${quoted(abilities)}.`,
  /** 400 from `POST login`: `abilities` asked for more than `loginAbilities` allows. */
  LOGIN_ABILITIES_NOT_ALLOWED: (abilities: readonly string[]): string =>
    `\`abilities\` asks for ${quoted(abilities)}, which a login may not ask for.`,
  /** 400 from `POST login`: the app does not let a login choose abilities. */
  LOGIN_ABILITIES_OFF:
    '`abilities` is not accepted at login here (the `loginAbilities` option is not set).',
  /** 400 from `POST tokens`: neither the password nor a token that may create tokens. */
  PASSWORD_REQUIRED:
    '`password` is required: creating a token needs the account password again.',
  /** 403 from `POST tokens`: the password given for re-authentication is wrong. */
  WRONG_PASSWORD: 'The password is incorrect.',
  /**
   * 401 from the cookie transport: more than one token cookie arrived (cookie tossing: another
   * host of the site, or a plain-HTTP page, planted one beside the real one). Which is the
   * site's own cannot be told from the `Cookie` header, so none is used.
   */
  COOKIE_SEVERAL: (name: string): string =>
    `Several ${name} cookies were sent with different values, so none is used: clear this site's cookies and log in again.`,
  CSRF_NO_ORIGIN:
    'CSRF check failed: a request authenticated by the token cookie must carry an Origin (or Referer) header.',
  CSRF_UNTRUSTED_ORIGIN:
    'CSRF check failed: the request comes from an origin that is not trusted.',
} as const;

function quoted(abilities: readonly string[]): string {
  return abilities.map((a) => `"${a}"`).join(', ');
}
