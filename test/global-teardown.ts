/** Jest global teardown: stops the embedded PostgreSQL started by global-setup, if any. */
import { EMBEDDED_PG_KEY, embeddedHandle } from './global-setup.js';

export default async function globalTeardown(): Promise<void> {
  const embedded = embeddedHandle();
  if (!embedded) return;
  delete (globalThis as Record<string, unknown>)[EMBEDDED_PG_KEY];
  await embedded.stop();
}
