import { describe, expect, it } from '@jest/globals';
import { Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { KnoxModule, KnoxUnsupportedDriverError } from '../../../lib/index.js';
import { TestUser } from '../../support/fixtures.js';

/*
 * A driver the library has no statements for stops the boot at once, with a message naming it
 * and the supported ones, and nothing of the library's is created. The driver is sql.js
 * (TypeORM's `sqljs`, an in-memory SQLite in WebAssembly): its package is installed, so the
 * boot reaches the library's check; for a driver whose package is missing (`mssql` without
 * `mssql`), TypeORM's own "package not installed" error comes first, from `new DataSource`.
 * Before this check, such a data source failed only after @nestjs/typeorm's ~30 s of retries of
 * TypeORM's `Data type "timestamptz" … is not supported`. The retries are left at their defaults
 * (10 × 3 s) here, so a retried error could not pass the time limit.
 */
describe('a data source on a driver the library does not support', () => {
  it('fails the boot well under 30 s with KnoxUnsupportedDriverError, no token table created', async () => {
    const dataSource = new DataSource({
      type: 'sqljs',
      entities: [TestUser],
      synchronize: true,
    });
    @Module({
      imports: [
        TypeOrmModule.forRootAsync({
          // The retries stay at @nestjs/typeorm's defaults (10 × 3 s).
          useFactory: () => ({}),
          dataSourceFactory: async () => dataSource.initialize(),
        }),
        KnoxModule.forRoot({
          userEntity: TestUser,
          validateUser: async () => null,
        }),
      ],
    })
    class AppModule {}
    const started = performance.now();
    const failure = await Test.createTestingModule({ imports: [AppModule] })
      .compile()
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    const elapsed = performance.now() - started;
    expect(failure).toBeInstanceOf(KnoxUnsupportedDriverError);
    const message = (failure as Error).message;
    expect(message).toContain("driver 'sqljs' is not supported");
    for (const supported of [
      'postgres',
      'mysql',
      'mariadb',
      'better-sqlite3',
    ]) {
      expect(message).toContain(`'${supported}'`);
    }
    expect(elapsed).toBeLessThan(5000);
    try {
      // The data source came up (the app's own table is there); the token table was not made.
      const tables: { name: string }[] = await dataSource.query(
        "SELECT name FROM sqlite_master WHERE type = 'table'",
      );
      expect(tables.map((t) => t.name)).toContain('knox_test_user');
      expect(tables.map((t) => t.name)).not.toContain('knox_authtoken');
    } finally {
      await dataSource.destroy();
    }
  });
});
