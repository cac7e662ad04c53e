import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { KnoxToken } from '../store/knox-token.entity.js';
import {
  KnoxEvents,
  type KnoxClientInfo,
  type KnoxLoginEvent,
  type KnoxRevokeReason,
  type KnoxTokenSource,
  type KnoxTokenEvent,
} from './knox.events.js';

interface EventSink {
  emit(event: string, payload: unknown): unknown;
}

/**
 * Emits the module's events through the app's `EventEmitter2`, when `@nestjs/event-emitter` is
 * installed and set up (it is an optional peer, loaded lazily); otherwise does nothing. A
 * listener that throws is logged and never fails the operation that emitted.
 */
@Injectable()
export class KnoxEventSink implements OnModuleInit {
  private readonly logger = new Logger('KnoxTokenService');
  private events: EventSink | undefined;

  constructor(private readonly moduleRef: ModuleRef) {}

  async onModuleInit(): Promise<void> {
    try {
      const { EventEmitter2 } = await import('@nestjs/event-emitter');
      this.events = this.moduleRef.get(EventEmitter2, { strict: false });
    } catch {
      this.events = undefined;
    }
  }

  /** The payload shared by the events about one token. */
  tokenEvent(
    token: KnoxToken,
    userId: unknown,
    client: Partial<KnoxClientInfo>,
  ): KnoxTokenEvent {
    return {
      userId,
      tokenId: token.id,
      tokenKey: token.tokenKey,
      ip: client.ip ?? null,
      userAgent: client.userAgent ?? null,
    };
  }

  /**
   * {@link KnoxEvents.TOKEN_CREATED} for a new token, and {@link KnoxEvents.LOGIN} too when a
   * login made it.
   */
  created(
    token: KnoxToken,
    userId: unknown,
    source: KnoxTokenSource,
    client: Partial<KnoxClientInfo>,
  ): void {
    const event: KnoxLoginEvent = {
      ...this.tokenEvent(token, userId, client),
      expiry: token.expiry,
      name: token.name,
      abilities: token.abilities,
    };
    this.emit(KnoxEvents.TOKEN_CREATED, { ...event, source });
    if (source === 'login') {
      this.emit(KnoxEvents.LOGIN, event);
    }
  }

  /**
   * {@link KnoxEvents.TOKEN_REVOKED} for each token, with the reason (and the `actorId` of an
   * admin's revocation).
   */
  revoked(
    tokens: readonly KnoxToken[],
    userId: unknown,
    reason: KnoxRevokeReason,
    client: Partial<KnoxClientInfo> & { actorId?: unknown },
  ): void {
    for (const token of tokens) {
      this.emit(KnoxEvents.TOKEN_REVOKED, {
        ...this.tokenEvent(token, userId, client),
        reason,
        ...(client.actorId !== undefined ? { actorId: client.actorId } : {}),
      });
    }
  }

  emit(event: string, payload: unknown): void {
    if (!this.events) {
      return;
    }
    try {
      this.events.emit(event, payload);
    } catch (error) {
      this.logger.error(
        `A listener of ${event} threw: ${(error as Error)?.message ?? String(error)}`,
      );
    }
  }
}
