/**
 * Jest global teardown: stops the embedded PostgreSQL started by global-setup, if any.
 * No relative imports: jest loads this file as CommonJS (see global-setup.ts).
 */
const HANDLE = Symbol.for('nestjs-knox.test.embeddedPostgres');

export default async function globalTeardown(): Promise<void> {
  const slot = globalThis as Record<symbol, unknown>;
  const embedded = slot[HANDLE] as { stop(): Promise<void> } | undefined;
  if (!embedded) return;
  delete slot[HANDLE];
  await embedded.stop();
}
