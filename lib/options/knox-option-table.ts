import { KnoxOptionsError } from './knox-options-error.js';

/** What kind of value an option takes (for the reader of the table, and for its docs). */
export type KnoxOptionKind =
  | 'duration'
  | 'count'
  | 'boolean'
  | 'function'
  | 'choice'
  | 'string'
  | 'list'
  | 'object';

/** The options resolved so far, in table order (a row's default may depend on earlier ones). */
export type KnoxResolving = Record<string, unknown>;

/** One row of an option table: how one option is checked and defaulted. */
export interface KnoxOptionRow {
  kind: KnoxOptionKind;
  /** The value used when the option is missing (`undefined`); never checked. */
  fallback?: (resolved: KnoxResolving) => unknown;
  /** Runs `check` even when the option is missing. */
  required?: boolean;
  /**
   * Validates a given value and returns what the module reads; throws KnoxOptionsError.
   * `name` is the option's name as the user wrote it (`loginThrottle.ttl` in a nested table).
   */
  check(value: unknown, resolved: KnoxResolving, name: string): unknown;
  /** The key in the resolved options, when it is not the option's own name. */
  into?: string;
}

/** An option table: option name → row, checked in this order. */
export type KnoxOptionTable = Readonly<Record<string, KnoxOptionRow>>;

/** A row's `fallback` that is always `value`. */
export const fixed = (value: unknown) => () => value;

/** Valid keys that are not in the table, and what to say when one turns up. */
export interface KnoxForeignKeys {
  keys: readonly string[];
  explain(key: string): string;
}

/**
 * Checks every row of `table` against `input` (unknown keys first) and returns the resolved
 * values, keyed by each row's `into` or its name.
 */
export function resolveTable(
  table: KnoxOptionTable,
  input: Record<string, unknown>,
  path = '',
  foreign?: KnoxForeignKeys,
): KnoxResolving {
  rejectUnknownKeys(Object.keys(input), Object.keys(table), path, foreign);
  const resolved: KnoxResolving = {};
  for (const [name, row] of Object.entries(table)) {
    const value = input[name];
    resolved[row.into ?? name] =
      value === undefined && !row.required
        ? row.fallback?.(resolved)
        : row.check(value, resolved, `${path}${name}`);
  }
  return resolved;
}

/**
 * Throws for the first key that is not an option, naming the nearest valid one
 * (`unknown option 'tokenTTL' — did you mean 'tokenTtl'?`).
 */
export function rejectUnknownKeys(
  given: readonly string[],
  valid: readonly string[],
  path = '',
  foreign?: KnoxForeignKeys,
): void {
  for (const key of given) {
    if (valid.includes(key)) {
      continue;
    }
    if (foreign?.keys.includes(key)) {
      throw new KnoxOptionsError(foreign.explain(key));
    }
    const candidates = [...valid, ...(foreign?.keys ?? [])];
    const near = nearestKey(key, candidates);
    const unknown = `unknown option '${path}${key}'`;
    if (near === undefined) {
      throw new KnoxOptionsError(
        `${unknown}; the options are ${valid.map((k) => `'${path}${k}'`).join(', ')}.`,
      );
    }
    const hint = foreign?.keys.includes(near)
      ? ` ${foreign.explain(near)}`
      : '';
    throw new KnoxOptionsError(
      `${unknown} — did you mean '${path}${near}'?${hint}`,
    );
  }
}

/**
 * The candidate closest to `key` by case-insensitive edit distance, if it is close enough to be
 * a typo (at most a third of the key's length, and at least 2 edits allowed); else the first
 * candidate that starts with the key, or contains it, or is contained in it (`ttl` → `tokenTtl`).
 */
export function nearestKey(
  key: string,
  candidates: readonly string[],
): string | undefined {
  const lower = key.toLowerCase();
  const allowed = Math.max(2, Math.floor(key.length / 3));
  let best: string | undefined;
  let bestDistance = allowed + 1;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best ?? containing(lower, candidates);
}

function containing(
  lower: string,
  candidates: readonly string[],
): string | undefined {
  if (lower.length < 3) {
    return undefined;
  }
  return (
    candidates.find((c) => c.toLowerCase().startsWith(lower)) ??
    candidates.find((c) => {
      const other = c.toLowerCase();
      return (
        other.includes(lower) || (other.length >= 3 && lower.includes(other))
      );
    })
  );
}

/** Levenshtein distance: insertions, deletions and substitutions. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j] + 1,
        current[j - 1] + 1,
        previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length];
}
