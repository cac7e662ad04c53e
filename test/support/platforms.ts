/**
 * The HTTP platforms the library supports. A describe whose outcome can depend on the platform
 * (headers, status codes, bodies, body parsing, 405s, trust proxy, cookies) runs on each:
 * `describe.each(PLATFORMS)('… (%s)', (platform) => { const t = useTestApp({ platform }); … })`.
 */
export const PLATFORMS = ['express', 'fastify'] as const;

export type Platform = (typeof PLATFORMS)[number];
