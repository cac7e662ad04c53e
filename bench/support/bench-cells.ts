/** The routes the benchmark drives, and one timed run of one of them. */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { ServerReady } from './bench-server.js';
import { runLoad, type RequestSpec } from './load.js';
import {
  CONCURRENCY,
  EXTRAS,
  PREPARED,
  type Counters,
  type Server,
} from './bench-process.js';

export interface Cell {
  id: string;
  label: string;
  platform: 'express' | 'fastify';
  port: number;
  expectStatus: number;
  /** Requests of the warm-up (at least one pass over the tokens, so that a cache is full). */
  warmup: number;
  /**
   * Before each timed round, untimed, send the warm-up again: a cached route is measured in its
   * steady state (tokens in use within `maxAge`), however long the other routes took.
   */
  rewarm?: boolean;
  next: () => RequestSpec;
}

export interface Round {
  rps: number;
  requests: number;
  queries: number;
  transactions: number;
  /** The server process's CPU time over the round (µs). */
  cpuUs: number;
  latenciesMs: Float64Array;
}

export const cursor = <T>(list: T[]) => {
  let at = 0;
  return () => list[at++ % list.length];
};

export function cells(ready: ServerReady): Cell[] {
  const out: Cell[] = [];
  const unknown = Array.from({ length: 1000 }, () =>
    randomBytes(32).toString('hex'),
  );
  for (const platform of ['express', 'fastify'] as const) {
    const plain = ready.ports[`${platform}-plain`];
    const cached = ready.ports[`${platform}-cached`];
    const tokenPass = ready.tokens.length;
    const knox = (c: () => string) => () => ({
      method: 'GET' as const,
      path: '/me',
      headers: { authorization: `Token ${c()}` },
    });
    out.push(
      {
        id: 'unguarded',
        label: 'unguarded',
        platform,
        port: plain,
        expectStatus: 200,
        warmup: 500,
        next: () => ({ method: 'GET', path: '/public' }),
      },
      {
        id: 'ceiling',
        label: 'ceiling: SHA-512 + Map lookup',
        platform,
        port: plain,
        expectStatus: 200,
        warmup: tokenPass,
        next: (() => {
          const c = cursor(ready.tokens);
          return () => ({
            method: 'GET' as const,
            path: '/ceiling/me',
            headers: { authorization: `Token ${c()}` },
          });
        })(),
      },
      {
        id: 'jwt',
        label: '@nestjs/jwt HS256 (KeyObject)',
        platform,
        port: plain,
        expectStatus: 200,
        warmup: tokenPass,
        next: (() => {
          const c = cursor(ready.jwts);
          return () => ({
            method: 'GET' as const,
            path: '/jwt/me',
            headers: { authorization: `Bearer ${c()}` },
          });
        })(),
      },
      {
        id: 'bearer',
        label: 'hand-written TypeORM bearer',
        platform,
        port: plain,
        expectStatus: 200,
        warmup: tokenPass,
        next: (() => {
          const c = cursor(ready.tokens);
          return () => ({
            method: 'GET' as const,
            path: '/bearer/me',
            headers: { authorization: `Bearer ${c()}` },
          });
        })(),
      },
      {
        id: 'knox',
        label: 'KnoxGuard, no cache',
        platform,
        port: plain,
        expectStatus: 200,
        warmup: tokenPass,
        next: knox(cursor(ready.tokens)),
      },
      {
        id: 'knox-cached',
        label: 'KnoxGuard, cache: true',
        platform,
        port: cached,
        expectStatus: 200,
        warmup: tokenPass,
        rewarm: true,
        next: knox(cursor(ready.tokens)),
      },
    );
    if (PREPARED) {
      for (const [id, label, route] of [
        [
          'lookup-qb',
          'uncached lookup: query builder (before)',
          '/lookup/query-builder',
        ],
        [
          'lookup-prepared',
          'uncached lookup: findByDigests (prepared, wired)',
          '/lookup/prepared',
        ],
      ]) {
        const c = cursor(ready.tokens);
        out.push({
          id,
          label,
          platform,
          port: plain,
          expectStatus: 200,
          warmup: tokenPass,
          next: () => ({
            method: 'GET' as const,
            path: route,
            headers: { authorization: `Token ${c()}` },
          }),
        });
      }
    }
    if (EXTRAS && platform === 'express') {
      const login = cursor(ready.loginUsernames);
      out.push(
        {
          id: 'knox5',
          label: 'knox 5 EMULATION (4 queries)',
          platform,
          port: plain,
          expectStatus: 200,
          warmup: 300,
          next: (() => {
            const c = cursor(ready.tokens);
            return () => ({
              method: 'GET' as const,
              path: '/knox5/me',
              headers: { authorization: `Token ${c()}` },
            });
          })(),
        },
        {
          id: 'malformed',
          label: 'KnoxGuard, malformed token (401, no query)',
          platform,
          port: cached,
          expectStatus: 401,
          warmup: 300,
          next: () => ({
            method: 'GET',
            path: '/me',
            headers: { authorization: 'Token not-a-knox-token-0123456789' },
          }),
        },
        {
          id: 'unknown',
          label: 'KnoxGuard, unknown token (401)',
          platform,
          port: cached,
          expectStatus: 401,
          warmup: 300,
          next: knox(cursor(unknown)),
        },
        {
          id: 'login',
          label: 'POST /auth/login',
          platform,
          port: plain,
          expectStatus: 200,
          warmup: 100,
          next: () => ({
            method: 'POST',
            path: '/auth/login',
            body: JSON.stringify({
              username: login(),
              password: ready.password,
            }),
          }),
        },
      );
    }
  }
  const only = process.env.BENCH_ONLY?.split(',');
  // The unguarded route stays: every ratio is taken to it.
  return only
    ? out.filter((cell) => cell.id === 'unguarded' || only.includes(cell.id))
    : out;
}

export async function runCell(
  server: Server,
  agent: http.Agent,
  cell: Cell,
  load: { count?: number; durationMs?: number },
): Promise<Round> {
  if (load.durationMs !== undefined && cell.rewarm) {
    await runLoad({
      agent,
      port: cell.port,
      concurrency: CONCURRENCY,
      count: cell.warmup,
      expectStatus: cell.expectStatus,
      next: cell.next,
    });
  }
  const before = await server.ask<Counters>('counters');
  const result = await runLoad({
    agent,
    port: cell.port,
    concurrency: CONCURRENCY,
    ...load,
    expectStatus: cell.expectStatus,
    next: cell.next,
  });
  const after = await server.ask<Counters>('counters');
  return {
    rps: (result.requests / result.elapsedMs) * 1000,
    requests: result.requests,
    queries: after.queries - before.queries,
    transactions: after.transactions - before.transactions,
    cpuUs: after.cpuUs - before.cpuUs,
    latenciesMs: result.latenciesMs,
  };
}
