import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const LIB = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Packages an app may not install: only their own entry points may load them (the list
 * scripts/check-optional-peers.mjs hides too).
 */
const OPTIONAL_PEERS: string[] = JSON.parse(
  readFileSync(
    join(LIB, '..', 'scripts', 'transport-optional-peers.json'),
    'utf8',
  ),
);

/** The packages a module loads at run time, following its relative value imports. */
function runtimePackages(entry: string): Map<string, string> {
  const found = new Map<string, string>();
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    // `import type` / `export type` vanish at compile time; everything else is a require.
    const statements = source.matchAll(
      /^(?:import|export)\s+(?!type\s)(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gms,
    );
    for (const [, specifier] of statements) {
      if (specifier.startsWith('.')) {
        visit(resolve(dirname(file), specifier.replace(/\.js$/, '.ts')));
      } else {
        const name = specifier.startsWith('@')
          ? specifier.split('/').slice(0, 2).join('/')
          : specifier.split('/')[0];
        found.set(name, file);
      }
    }
  };
  visit(entry);
  return found;
}

describe('optional peers', () => {
  it('lib/index.ts loads none of the transports’ optional packages', () => {
    const loaded = runtimePackages(join(LIB, 'index.ts'));
    expect(loaded.has('@nestjs/common')).toBe(true);
    const optional = OPTIONAL_PEERS.filter((name) => loaded.has(name)).map(
      (name) => `${name} (from ${loaded.get(name)})`,
    );
    expect(optional).toEqual([]);
  });

  it.each([
    ['websocket', '@nestjs/websockets'],
    ['passport', '@nestjs/passport'],
  ])('the %s entry point is the one that loads %s', (entry, peer) => {
    const loaded = runtimePackages(join(LIB, 'transports', entry, 'index.ts'));
    expect(loaded.has(peer)).toBe(true);
  });

  it('the graphql entry point reads GraphQL contexts by shape: it loads no optional package', () => {
    // Its refusal is an HttpException carrying GraphQL `extensions` (graphql-js copies them
    // onto the field's error), so neither graphql nor @nestjs/graphql is loaded by it.
    const loaded = runtimePackages(
      join(LIB, 'transports', 'graphql', 'index.ts'),
    );
    expect(OPTIONAL_PEERS.filter((name) => loaded.has(name))).toEqual([]);
  });
});
