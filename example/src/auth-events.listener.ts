import { Injectable, Logger } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import {
  KnoxEvents,
  type KnoxLoginEvent,
  type KnoxLogoutAllEvent,
  type KnoxTokenEvent,
} from 'nestjs-knox';

/** Logs logins and logouts. Events carry ids, never the token. */
@Injectable()
export class AuthEventsListener {
  private readonly logger = new Logger('Auth');

  @OnEvent(KnoxEvents.LOGIN)
  onLogin(event: KnoxLoginEvent): void {
    this.logger.log(
      `login: user ${String(event.userId)}, token ${event.tokenId} from ${event.ip ?? '?'}`,
    );
  }

  @OnEvent(KnoxEvents.LOGOUT)
  onLogout(event: KnoxTokenEvent): void {
    this.logger.log(
      `logout: user ${String(event.userId)}, token ${event.tokenId}`,
    );
  }

  @OnEvent(KnoxEvents.LOGOUT_ALL)
  onLogoutAll(event: KnoxLogoutAllEvent): void {
    this.logger.log(
      `logout-all: user ${String(event.userId)}, ${event.count} token(s)`,
    );
  }
}
