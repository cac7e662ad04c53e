/**
 * Issue 12: the audit-everything recipe of docs/events.md ("Audit everything"). `@OnEvent('knox.*')`
 * fires for every knox event when EventEmitterModule is set up with `wildcard: true`, and never
 * without it (the trap the page warns about); a listener per name of `KnoxEvents` needs no
 * wildcard. (The page's code blocks themselves are type-checked by test/docs/.)
 */
import { describe, expect, it } from '@jest/globals';
import { Injectable, Module, type OnModuleInit } from '@nestjs/common';
import {
  EventEmitter2,
  EventEmitterModule,
  OnEvent,
} from '@nestjs/event-emitter';
import { readFileSync } from 'node:fs';
import { KnoxEvents, type KnoxTokenEvent } from '../../lib/index.js';
import { login, useTestApp } from '../support/test-app.js';

function recipeModule(wildcard: boolean) {
  @Injectable()
  class AuthAuditListener implements OnModuleInit {
    readonly wildcardSeen: Partial<KnoxTokenEvent>[] = [];
    readonly namedSeen: string[] = [];

    constructor(private readonly events: EventEmitter2) {}

    @OnEvent('knox.*')
    onKnoxEvent(payload: Partial<KnoxTokenEvent>) {
      this.wildcardSeen.push(payload);
    }

    onModuleInit() {
      for (const name of Object.values(KnoxEvents)) {
        this.events.on(name, () => this.namedSeen.push(name));
      }
    }
  }

  @Module({
    imports: [EventEmitterModule.forRoot({ wildcard })],
    providers: [AuthAuditListener],
    exports: [AuthAuditListener],
  })
  class RecipeModule {}
  return { RecipeModule, AuthAuditListener };
}

describe.each([true, false])(
  "docs/events.md recipe: @OnEvent('knox.*') with wildcard: %s",
  (wildcard) => {
    const { RecipeModule, AuthAuditListener } = recipeModule(wildcard);
    const t = useTestApp({ events: false, imports: [RecipeModule] });

    it(
      wildcard
        ? 'hears every knox event, each once'
        : 'never fires; the per-name listeners still hear everything',
      async () => {
        const alice = await t.createUser('alice');
        const token = await login(t, 'alice');
        const out = await t.http
          .post('/auth/logout')
          .set('Authorization', `Token ${token}`);
        expect(out.status).toBe(204);

        const listener = t.app.get(AuthAuditListener);
        expect(listener.namedSeen).toEqual(
          expect.arrayContaining([
            KnoxEvents.LOGIN,
            KnoxEvents.TOKEN_CREATED,
            KnoxEvents.LOGOUT,
            KnoxEvents.TOKEN_REVOKED,
          ]),
        );
        if (wildcard) {
          expect(listener.wildcardSeen).toHaveLength(listener.namedSeen.length);
          for (const payload of listener.wildcardSeen) {
            expect(payload.userId).toBe(alice.id);
            expect(JSON.stringify(payload)).not.toContain(token);
          }
        } else {
          expect(listener.wildcardSeen).toEqual([]);
        }
      },
    );
  },
);

describe('docs/events.md', () => {
  it('still shows the recipe tested above', () => {
    const page = readFileSync(
      new URL('../../docs/events.md', import.meta.url),
      'utf8',
    );
    const recipe = page.slice(page.indexOf('\n## Audit everything'));
    for (const line of [
      "@OnEvent('knox.*')",
      'EventEmitterModule.forRoot({ wildcard: true })',
      'for (const name of Object.values(KnoxEvents)) {',
      'this.events.on(name, (payload: Partial<KnoxTokenEvent>) =>',
    ]) {
      expect(recipe).toContain(line);
    }
  });
});
