import { Controller, Get, UseGuards } from '@nestjs/common';
import { KnoxAuth, KnoxGuard, KnoxUser, type KnoxToken } from 'nestjs-knox';
import type { User } from './users/user.entity.js';

@Controller()
export class AppController {
  /** Public. */
  @Get()
  index() {
    return {
      name: 'nestjs-knox example',
      login: 'POST /auth/login',
      me: 'GET /me (Authorization: Token <token>)',
    };
  }

  /** Needs a token. */
  @UseGuards(KnoxGuard)
  @Get('me')
  me(@KnoxUser() user: User, @KnoxAuth() token: KnoxToken) {
    return {
      id: user.id,
      username: user.username,
      token: { id: token.id, name: token.name, expiry: token.expiry },
    };
  }
}
