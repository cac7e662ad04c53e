import type { KnoxToken } from '../store/knox-token.entity.js';

/**
 * The prefix of the plaintext each authenticated record was presented with: a rotation gives the
 * successor the same prefix when the app issues several (`getTokenPrefix`).
 */
const PRESENTED = Symbol('knox.presentedPrefix');

type Marked = KnoxToken & { [PRESENTED]?: string };

/** Records the prefix `token` was presented with. */
export function rememberPresentedPrefix(
  token: KnoxToken,
  prefix: string,
): void {
  // A symbol-keyed own property rather than a WeakMap entry per request (WeakMap entries keep
  // garbage for the major collector), assigned rather than defined non-enumerable (that costs a
  // dictionary-mode object per request). JSON and `Object.keys` skip symbols; copies of the
  // record (the cache's) keep it, as they should: it is the same token.
  (token as Marked)[PRESENTED] = prefix;
}

/** The prefix `token` was presented with, if it was authenticated in this process. */
export function presentedPrefixOf(token: KnoxToken): string | undefined {
  return (token as Marked)[PRESENTED];
}
