/**
 * A Nest app compiled as CommonJS (`module: commonjs`, as `nest new` made them), loading the
 * packed nestjs-knox (ESM) through Node's require(esm): boots on DATABASE_URL, logs in, calls a
 * guarded route, lists the sessions, loads the token admin page and list, logs out; exits non-zero
 * on any surprise. Run by run.sh.
 */
import 'reflect-metadata';
import { Controller, Get, Module, UseGuards } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { Column, DataSource, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { KnoxGuard, KnoxModule, KnoxUser } from 'nestjs-knox';

@Entity({ name: 'cjs_app_user' })
class User {
  @PrimaryGeneratedColumn()
  id: number;

  @Column({ unique: true })
  username: string;

  @Column()
  password: string;
}

@Controller()
class MeController {
  @UseGuards(KnoxGuard)
  @Get('me')
  me(@KnoxUser() user: User) {
    return { id: user.id, username: user.username };
  }
}

const SCHEMA = 'knox_cjs_app';

@Module({
  imports: [
    TypeOrmModule.forRoot({
      type: 'postgres',
      url: process.env.DATABASE_URL,
      // Its own schema: this app's tables never touch those of the test suite.
      schema: SCHEMA,
      entities: [User],
      autoLoadEntities: true,
      synchronize: true,
      retryAttempts: 0,
    }),
    KnoxModule.forRootAsync({
      userEntity: User,
      inject: [DataSource],
      useFactory: (dataSource: DataSource) => ({
        validateUser: async (username: string, password: string) => {
          const users = dataSource.getRepository(User);
          const user = await users.findOneBy({ username });
          // A real app compares a password hash (see the README).
          return user && user.password === password ? user : null;
        },
        // The token admin: its page's files come from the packed tarball (dist/admin/page/).
        admin: { isAdmin: (user: User) => user.username === 'alice' },
      }),
    }),
  ],
  controllers: [MeController],
})
class AppModule {}

function check(condition: unknown, what: string): void {
  if (!condition) {
    throw new Error(`CommonJS app: ${what}`);
  }
}

async function main(): Promise<void> {
  check(typeof require === 'function', 'not compiled as CommonJS');
  const app = await NestFactory.create(AppModule, {
    logger: ['error', 'warn'],
  });
  await app.listen(0, '127.0.0.1');
  try {
    const base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    const users = app.get(DataSource).getRepository(User);
    await users.query(`DELETE FROM "${SCHEMA}"."knox_authtoken"`);
    await users.query(`DELETE FROM "${SCHEMA}"."cjs_app_user"`);
    await users.save({ username: 'alice', password: 'secret-password' });

    const login = await fetch(`${base}/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        username: 'alice',
        password: 'secret-password',
        name: 'cjs',
      }),
    });
    check(login.status === 200, `login answered ${login.status}`);
    const { token } = (await login.json()) as { token: string };
    const auth = { Authorization: `Token ${token}` };

    const me = await fetch(`${base}/me`, { headers: auth });
    const body = (await me.json()) as { username?: string };
    check(
      me.status === 200 && body.username === 'alice',
      `GET /me: ${me.status}`,
    );

    const sessions = await fetch(`${base}/auth/tokens`, { headers: auth });
    const list = (await sessions.json()) as { name: string }[];
    check(list.length === 1 && list[0].name === 'cjs', 'GET /auth/tokens');

    const page = await fetch(`${base}/auth/admin`);
    const html = await page.text();
    check(
      page.status === 200 && html.includes('src="admin/knox-admin.js"'),
      `GET /auth/admin: ${page.status}`,
    );
    const script = await fetch(`${base}/auth/admin/knox-admin.js`);
    check(
      script.status === 200 && (await script.text()).includes('sessionStorage'),
      `GET /auth/admin/knox-admin.js: ${script.status}`,
    );
    const admin = await fetch(`${base}/auth/admin/tokens`, { headers: auth });
    const tokens = (await admin.json()) as { items: { kind: string }[] };
    check(
      admin.status === 200 && tokens.items[0]?.kind === 'session',
      `GET /auth/admin/tokens: ${admin.status}`,
    );

    const logout = await fetch(`${base}/auth/logout`, {
      method: 'POST',
      headers: auth,
    });
    check(logout.status === 204, `logout answered ${logout.status}`);
    const after = await fetch(`${base}/me`, { headers: auth });
    check(after.status === 401, `GET /me after logout: ${after.status}`);
    console.log(
      `CommonJS app on Node ${process.versions.node}: login, GET /me, GET /auth/tokens, the token admin, logout OK`,
    );
  } finally {
    await app.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
