import { startEmbeddedPostgres } from './build/embedded-postgres.js';
export async function start(max = 10, dataDir = process.env.PGDIR) {
  const t0 = performance.now();
  const pg = await startEmbeddedPostgres({ maxConnections: max, dataDir, templateCacheDir: process.env.NOCACHE ? false : undefined });
  console.log('start', (performance.now() - t0).toFixed(0), 'ms', pg.url);
  return pg;
}
