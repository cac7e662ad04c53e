/**
 * Issue 23, item 1: one GraphQL operation with many aliases of a guarded field. A refusal is
 * not a server error (nothing logged, the client still gets each field's error with its code,
 * the app's own exception filters still see it); an outage is a 503 per field and a summary.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  Catch,
  HttpException,
  Module,
  type ArgumentsHost,
} from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import type { GqlExceptionFilter } from '@nestjs/graphql';
import { KnoxMessages } from '../../../lib/index.js';
import {
  MeResolver,
  aliases,
  apollo,
  bootGraphQL as boot,
  postGql as post,
} from '../../support/graphql.js';
import { LogLines } from '../../support/log-lines.js';
import { DbOutage } from '../../support/db-outage.js';
import { login, type TestApp } from '../../support/test-app.js';

/** An app's own catch-all filter: it sees what the resolvers throw, and passes it on. */
@Catch()
class SeenFilter implements GqlExceptionFilter {
  static seen: unknown[] = [];
  catch(exception: unknown, _host: ArgumentsHost) {
    SeenFilter.seen.push(exception);
    return exception;
  }
}

@Module({
  imports: [apollo()],
  providers: [MeResolver, { provide: APP_FILTER, useClass: SeenFilter }],
})
class FilteredApp {}

describe('GraphQL refusals are not server errors (issue 23 item 1)', () => {
  const log = new LogLines();
  let t: TestApp;
  beforeAll(async () => {
    t = await boot(log);
  });
  afterAll(() => t.close());

  it('2 000 aliases without a token: 2 000 UNAUTHENTICATED errors, no log line', async () => {
    log.reset();
    const res = await post(t, aliases(2000));
    expect(res.status).toBe(200);
    expect(res.body.errors).toHaveLength(2000);
    for (const error of res.body.errors ?? []) {
      expect(error).toMatchObject({
        message: KnoxMessages.NOT_PROVIDED,
        extensions: { code: 'UNAUTHENTICATED', status: 401 },
      });
    }
    expect(log.lines()).toBe(0);
  });

  it('a wrong token and a malformed header: refused per field, no log line', async () => {
    log.reset();
    const wrong = await post(t, aliases(500), 'x'.repeat(64));
    expect(wrong.body.errors).toHaveLength(500);
    expect(wrong.body.errors?.[0]).toMatchObject({
      message: KnoxMessages.INVALID_TOKEN,
      extensions: { code: 'UNAUTHENTICATED', status: 401 },
    });
    const malformed = await t.http
      .post('/graphql')
      .set('Authorization', 'Token a b')
      .send({ query: aliases(500) });
    expect(malformed.body.errors).toHaveLength(500);
    expect(malformed.body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
    expect(log.lines()).toBe(0);
  });
});

describe("an app's exception filter still sees GraphQL refusals", () => {
  const log = new LogLines();
  let t: TestApp;
  beforeAll(async () => {
    t = await boot(log, { imports: [FilteredApp] });
  });
  afterAll(() => t.close());

  it('each refused field reaches the filter as a 401 HttpException, and the client gets its code', async () => {
    SeenFilter.seen = [];
    const res = await post(t, aliases(50));
    expect(res.body.errors).toHaveLength(50);
    expect(res.body.errors?.[0]).toMatchObject({
      message: KnoxMessages.NOT_PROVIDED,
      extensions: { code: 'UNAUTHENTICATED', status: 401 },
    });
    expect(SeenFilter.seen).toHaveLength(50);
    for (const seen of SeenFilter.seen) {
      expect(seen).toBeInstanceOf(HttpException);
      expect((seen as HttpException).getStatus()).toBe(401);
    }
    expect(log.entries).toEqual([]);
  });
});

describe('a database outage over GraphQL (issue 23 item 1)', () => {
  const log = new LogLines();
  let t: TestApp;
  let outage: DbOutage;
  beforeAll(async () => {
    outage = await DbOutage.start();
    t = await boot(log, outage.appOptions(5000));
  });
  afterAll(async () => {
    await outage?.restore().catch(() => undefined);
    await t?.close();
    await outage?.close();
  });

  it('2 000 aliases: SERVICE_UNAVAILABLE per field, a few summary lines in the log', async () => {
    const token = await login(t, 'alice');
    await outage.cut(t.dataSource);
    log.reset();
    const res = await post(t, aliases(2000), token);
    expect(res.body.errors).toHaveLength(2000);
    for (const error of res.body.errors ?? []) {
      expect(error).toMatchObject({
        message: KnoxMessages.UNAVAILABLE,
        extensions: { code: 'SERVICE_UNAVAILABLE', status: 503 },
      });
    }
    expect(
      log.entries.filter((e) => e.level === 'error').length,
    ).toBeLessThanOrEqual(2);
    expect(log.lines()).toBeLessThanOrEqual(10);
    await outage.restore();
  });
});
