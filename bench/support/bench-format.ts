import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The installed version of a package (walks up from its resolved entry point). */
export function versionOf(name: string): string {
  try {
    let dir = path.dirname(fileURLToPath(import.meta.resolve(name)));
    for (;;) {
      const file = path.join(dir, 'package.json');
      if (existsSync(file)) {
        const json = JSON.parse(readFileSync(file, 'utf8')) as {
          name?: string;
          version?: string;
        };
        if (json.name === name && json.version) {
          return json.version;
        }
      }
      const parent = path.dirname(dir);
      if (parent === dir) {
        return '?';
      }
      dir = parent;
    }
  } catch {
    return '?';
  }
}

export function table(
  headers: string[],
  rows: string[][],
  right: boolean[],
): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => row[column].length)),
  );
  const line = (cells: string[]) =>
    `| ${cells
      .map((cell, column) =>
        right[column]
          ? cell.padStart(widths[column])
          : cell.padEnd(widths[column]),
      )
      .join(' | ')} |`;
  const rule = `|${widths
    .map((width, column) =>
      right[column] ? `${'-'.repeat(width + 1)}:` : '-'.repeat(width + 2),
    )
    .join('|')}|`;
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

export const fmt = (n: number, digits = 0) =>
  n
    .toLocaleString('en-US', {
      maximumFractionDigits: digits,
      minimumFractionDigits: digits,
    })
    .replace(/,/g, ' ');
