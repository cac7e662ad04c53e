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
  // A non-enumerable own property rather than a WeakMap entry per request (each record is a
  // fresh copy per request; WeakMap entries keep garbage for the major collector). Not
  // enumerable: it is neither serialized nor copied with the record.
  Object.defineProperty(token, PRESENTED, {
    value: prefix,
    configurable: true,
    writable: true,
    enumerable: false,
  });
}

/** The prefix `token` was presented with, if it was authenticated in this process. */
export function presentedPrefixOf(token: KnoxToken): string | undefined {
  return (token as Marked)[PRESENTED];
}
