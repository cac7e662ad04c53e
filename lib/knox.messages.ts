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
  CSRF_NO_ORIGIN:
    'CSRF check failed: a request authenticated by the token cookie must carry an Origin (or Referer) header.',
  CSRF_UNTRUSTED_ORIGIN:
    'CSRF check failed: the request comes from an origin that is not trusted.',
} as const;
