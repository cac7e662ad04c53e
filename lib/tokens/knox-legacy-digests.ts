import type { KnoxLegacyTokenDigest } from '../options/knox-module-options.interface.js';
import {
  CHECKSUM_LENGTH,
  CHECKSUM_RANDOM_LENGTH,
  digestsEqual,
} from './knox-token-format.js';

/** Called once per broken legacy scheme (by index) with what is wrong with it. */
export type KnoxLegacyProblemReporter = (
  index: number,
  problem: string,
) => void;

/**
 * The digests the legacy schemes give `token`: strings only (without NUL characters), without
 * duplicates or the current digest. A scheme that throws or returns something else counts as
 * no match and is reported (it is a bug in the app, and the token is the client's input).
 */
export function legacyDigestsOf(
  token: string,
  current: string,
  schemes: readonly KnoxLegacyTokenDigest[],
  report: KnoxLegacyProblemReporter,
): string[] {
  const digests: string[] = [];
  schemes.forEach((scheme, index) => {
    let digest: unknown;
    try {
      digest = scheme(token);
    } catch (error) {
      report(index, `threw: ${(error as Error)?.message ?? String(error)}`);
      return;
    }
    const problem = problemOf(digest);
    if (problem) {
      report(index, problem);
    } else if (
      typeof digest === 'string' &&
      digest !== current &&
      !digests.includes(digest)
    ) {
      digests.push(digest);
    }
  });
  return digests;
}

function problemOf(digest: unknown): string | undefined {
  if (digest === null || digest === undefined) {
    return undefined;
  }
  if (typeof digest !== 'string' || digest.length === 0) {
    const got =
      typeof digest === 'string'
        ? 'an empty string'
        : ((digest as object)?.constructor?.name ?? typeof digest);
    return `returned ${got} instead of the stored digest as a string (or null)`;
  }
  if (digest.includes('\u0000')) {
    // No text column holds a NUL, and PostgreSQL would refuse the whole query for it.
    return 'returned a string with a NUL character (a binary digest? return it as hex, as stored)';
  }
  return undefined;
}

/**
 * The row the token owns among those found, compared in constant time: the one stored under
 * the current digest, else one stored under a legacy digest.
 */
export function matchDigest<T extends { digest: string }>(
  rows: readonly T[],
  current: string,
  legacy: readonly string[],
): T | undefined {
  let byCurrent: T | undefined;
  let byLegacy: T | undefined;
  for (const row of rows) {
    if (digestsEqual(row.digest, current)) {
      byCurrent ??= row;
    }
    let isLegacy = false;
    for (const digest of legacy) {
      isLegacy = digestsEqual(row.digest, digest) || isLegacy;
    }
    if (isLegacy) {
      byLegacy ??= row;
    }
  }
  return byCurrent ?? byLegacy;
}

/** The prefix of a well-formed plaintext token of either format. */
export function prefixOfPlaintext(token: string, hexLength: number): string {
  if (
    token.length >= hexLength &&
    /^[0-9a-f]+$/.test(token.slice(-hexLength))
  ) {
    return token.slice(0, token.length - hexLength);
  }
  return token.slice(
    0,
    Math.max(0, token.length - CHECKSUM_RANDOM_LENGTH - CHECKSUM_LENGTH),
  );
}
