/**
 * Type tests (issue 12), checked by `npm run typecheck` (tsc over test/): the user type is
 * inferred from `userEntity`, so a hook that reads a property the user entity lacks fails to
 * compile. Each `@ts-expect-error` line must be an error; if it compiles, tsc fails ("Unused
 * '@ts-expect-error' directive").
 */
import {
  KnoxModule,
  KnoxTokenService,
  type KnoxAuthResult,
  type ResolvedKnoxOptions,
} from '../../lib/index.js';

class User {
  id!: number;
  username!: string;
  isStaff!: boolean;
}

class Customer {
  id!: string;
  email!: string;
}

const users = {
  check: async (username: string): Promise<User | null> =>
    username === 'x' ? new User() : null,
};

// The hooks see a User: reading what a User has compiles.
KnoxModule.forRoot({
  userEntity: User,
  validateUser: (username) => users.check(username),
  getTokenLimitPerUser: ({ user }) => (user.isStaff ? 10 : 3),
  isUserActive: (user) => user.username !== 'banned',
  serializeUser: (user) => ({ id: user.id }),
});

KnoxModule.forRoot({
  userEntity: Customer,
  validateUser: async () => null,
  // @ts-expect-error a Customer has no isStaff
  getTokenLimitPerUser: ({ user }) => (user.isStaff ? 10 : 3),
});

KnoxModule.forRoot({
  userEntity: Customer,
  validateUser: async () => null,
  // @ts-expect-error a Customer has no username
  isUserActive: (user) => user.username !== 'banned',
});

// The token admin's hooks see a User too.
KnoxModule.forRoot({
  userEntity: User,
  validateUser: (username) => users.check(username),
  admin: { isAdmin: (user) => user.isStaff, describeUser: (u) => u.username },
});

KnoxModule.forRoot({
  userEntity: Customer,
  validateUser: async () => null,
  admin: {
    // @ts-expect-error a Customer has no isStaff
    isAdmin: (user) => user.isStaff,
  },
});

// The same through forRootAsync: the factory's options are typed by userEntity.
KnoxModule.forRootAsync({
  userEntity: User,
  useFactory: () => ({
    validateUser: (username: string) => users.check(username),
    getTokenTtl: ({ user }) => (user.isStaff ? 60_000 : null),
  }),
});

KnoxModule.forRootAsync({
  userEntity: Customer,
  useFactory: () => ({
    validateUser: async () => null,
    // @ts-expect-error a Customer has no isStaff
    getTokenTtl: ({ user }) => (user.isStaff ? 60_000 : null),
  }),
});

// KnoxTokenService<User> types what it returns and takes.
export async function serviceTypes(
  knox: KnoxTokenService<User>,
  customer: Customer,
): Promise<void> {
  const result: KnoxAuthResult<User> = await knox.authenticate('token');
  const staff: boolean = result.user.isStaff;
  const { record } = await knox.create(result.user, { name: 'CI key' });
  const owner: User | undefined = record.user;
  // @ts-expect-error a Customer is not a User
  await knox.create(customer);
  // @ts-expect-error the user of an authenticated User token is no Customer
  const wrong: Customer = result.user;
  void staff;
  void owner;
  void wrong;
}

// What a KnoxGuard / KnoxController subclass names is exported.
export type SubclassNeeds = ResolvedKnoxOptions['authSchemes'];
