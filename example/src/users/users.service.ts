import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Repository } from 'typeorm';
import { User } from './user.entity.js';
import { hashPassword, verifyPassword } from './password.js';

// Checked against when the username is unknown, so both answers take as long.
const DUMMY_HASH = hashPassword('not-a-real-password');

@Injectable()
export class UsersService {
  constructor(
    @InjectRepository(User) private readonly users: Repository<User>,
  ) {}

  /** The user whose username and password match, or null. */
  async verify(username: string, password: string): Promise<User | null> {
    const user = await this.users.findOneBy({ username });
    const ok = await verifyPassword(
      password,
      user?.passwordHash ?? (await DUMMY_HASH),
    );
    return user && ok ? user : null;
  }

  /** Creates the user unless it exists; returns whether it was created. */
  async ensure(username: string, password: string): Promise<boolean> {
    if (await this.users.existsBy({ username })) {
      return false;
    }
    await this.users.insert({
      username,
      passwordHash: await hashPassword(password),
    });
    return true;
  }
}
