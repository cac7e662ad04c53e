import type { KnoxToken } from '../store/knox-token.entity.js';

/**
 * The prefix of the plaintext each authenticated record was presented with: a rotation gives the
 * successor the same prefix when the app issues several (`getTokenPrefix`).
 */
const presented = new WeakMap<KnoxToken, string>();

/** Records the prefix `token` was presented with. */
export function rememberPresentedPrefix(
  token: KnoxToken,
  prefix: string,
): void {
  presented.set(token, prefix);
}

/** The prefix `token` was presented with, if it was authenticated in this process. */
export function presentedPrefixOf(token: KnoxToken): string | undefined {
  return presented.get(token);
}
