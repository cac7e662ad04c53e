import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import type { Repository } from 'typeorm';
import {
  KNOX_MODULE_EXTRAS,
  KNOX_TOKEN_REPOSITORY,
} from '../knox.constants.js';
import type { KnoxStoreSettings } from './knox-store-settings.js';
import type { KnoxToken } from './knox-token.entity.js';
import { KNOX_MIGRATION_NAMES } from './migrations/knox-migrations.js';
import { KNOX_DEFAULT_TABLE_NAME } from './knox-token-table.js';
import { knoxDialectOf } from './knox-dialect.js';
import { knoxTableColumns, type KnoxDbColumn } from './knox-dialect-schema.js';

/** The token table does not match the entity: thrown at boot with what to run. */
export class KnoxSchemaError extends Error {
  constructor(message: string) {
    super(`KnoxModule: ${message}`);
    this.name = 'KnoxSchemaError';
  }
}

/** The docs page on the schema, named in the messages. */
const README_SECTION = 'docs/database.md';

/** The columns django-rest-knox creates; a table with these and no `id` is Django's. */
const DJANGO_COLUMNS = ['digest', 'token_key', 'user_id', 'created', 'expiry'];

type ColumnMetadata = Repository<KnoxToken>['metadata']['columns'][number];

type DbColumn = KnoxDbColumn;

/**
 * Checks at boot, with one query on `information_schema.columns`, that the token table has the
 * entity's columns with compatible types, so that a table missing columns (a django-rest-knox
 * table not taken over yet, a migration not run) stops the boot with a message saying what to
 * run, instead of answering 503 to every request.
 */
@Injectable()
export class KnoxSchemaCheck implements OnModuleInit {
  constructor(
    @Inject(KNOX_TOKEN_REPOSITORY)
    private readonly tokens: Repository<KnoxToken>,
    @Inject(KNOX_MODULE_EXTRAS)
    private readonly extras: KnoxStoreSettings,
  ) {}

  async onModuleInit(): Promise<void> {
    const metadata = this.tokens.metadata;
    const table = metadata.tablePath;
    const found = await this.readColumns();
    const schema = this.extras.schema ?? 'knox';
    if (found.size === 0) {
      this.checkMissingTableIsCreated(table, schema);
      return;
    }
    const { missing, mismatched } = this.differences(metadata.columns, found);
    if (missing.length === 0 && mismatched.length === 0) {
      return;
    }
    const parts = [
      ...(missing.length ? [`lacks columns ${missing.join(', ')}`] : []),
      ...(mismatched.length
        ? [`has mismatched columns ${mismatched.join(', ')}`]
        : []),
    ];
    throw new KnoxSchemaError(
      `table ${table} ${parts.join(' and ')}: ${this.fixFor(found, missing, schema)} (${README_SECTION}).`,
    );
  }

  /** The token table's columns by name (none when it does not exist). */
  private async readColumns(): Promise<Map<string, DbColumn>> {
    const metadata = this.tokens.metadata;
    let rows: DbColumn[];
    try {
      const dataSource = this.tokens.manager.connection;
      rows = await knoxTableColumns(
        dataSource,
        knoxDialectOf(dataSource),
        metadata.schema,
        metadata.tableName,
      );
    } catch (error) {
      throw new KnoxSchemaError(
        `could not read the columns of table ${metadata.tablePath}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    return new Map(rows.map((row) => [row.column_name, row]));
  }

  /** No table is fine when TypeORM creates it at boot (`synchronize`, `migrationsRun`). */
  private checkMissingTableIsCreated(
    table: string,
    schema: 'knox' | 'django',
  ): void {
    const options = this.tokens.manager.connection.options as {
      synchronize?: boolean;
      migrationsRun?: boolean;
    };
    if (options.synchronize || options.migrationsRun) {
      return;
    }
    throw new KnoxSchemaError(
      `table ${table} does not exist: run the migration ${this.migrationHint(schema)}, or set \`synchronize: true\` on the data source (${README_SECTION}).`,
    );
  }

  /** The entity's columns the table lacks, and those it has with another type. */
  private differences(
    columns: ColumnMetadata[],
    found: Map<string, DbColumn>,
  ): { missing: string[]; mismatched: string[] } {
    const missing: string[] = [];
    const mismatched: string[] = [];
    for (const column of columns) {
      const actual = found.get(column.databaseName);
      if (!actual) {
        missing.push(column.databaseName);
        continue;
      }
      const problem = this.compare(column, actual);
      if (problem) {
        mismatched.push(`${column.databaseName} (${problem})`);
      }
    }
    return { missing, mismatched };
  }

  /**
   * What to run: the takeover for a table django-rest-knox created, the pending migrations for
   * missing columns, else an ALTER of the mismatched ones.
   */
  private fixFor(
    found: Map<string, DbColumn>,
    missing: string[],
    schema: 'knox' | 'django',
  ): string {
    const djangoTable =
      DJANGO_COLUMNS.every((name) => found.has(name)) && !found.has('id');
    if (djangoTable) {
      return `run the migration ${this.migrationHint('django')}${schema === 'django' ? '' : ` and set \`schema: 'django'\` in KnoxModule's options`}`;
    }
    return missing.length
      ? `run the pending migrations of ${this.migrationsCall(schema)}`
      : 'alter those columns to the types expected';
  }

  /** `KnoxDjangoTakeover9000000000002 (knoxMigrations(User, { schema: 'django' }))`. */
  private migrationHint(schema: 'knox' | 'django'): string {
    const name =
      schema === 'django'
        ? KNOX_MIGRATION_NAMES.djangoTakeover
        : KNOX_MIGRATION_NAMES.createTokenTable;
    return `${name} (${this.migrationsCall(schema)})`;
  }

  /** `knoxMigrations(User, { tableName: 'tokens', schema: 'django' })`, as this app must call it. */
  private migrationsCall(schema: 'knox' | 'django'): string {
    const options: string[] = [];
    const tableName = this.extras.tableName ?? KNOX_DEFAULT_TABLE_NAME;
    if (tableName !== KNOX_DEFAULT_TABLE_NAME) {
      options.push(`tableName: '${tableName}'`);
    }
    if (schema === 'django') {
      options.push(`schema: 'django'`);
    }
    const args = options.length ? `, { ${options.join(', ')} }` : '';
    return `knoxMigrations(${this.extras.userEntity.name}${args})`;
  }

  /** Why the column cannot hold what the entity writes, or undefined when it can. */
  private compare(
    column: ColumnMetadata,
    actual: DbColumn,
  ): string | undefined {
    const driver = this.tokens.manager.connection.driver;
    const type = driver.normalizeType(column);
    const length = column.length ? Number(column.length) : undefined;
    // information_schema calls every array column `ARRAY`; its element type is in udt_name.
    const array = (data: string, udt: string) =>
      data === 'ARRAY' ? `${udt.replace(/^_/, '')}[]` : data;
    const expectedType = column.isArray ? `${type}[]` : type;
    const actualType = array(actual.data_type, actual.udt_name);
    const expected = `${expectedType}${length ? `(${length})` : ''} ${column.isNullable ? 'NULL' : 'NOT NULL'}`;
    const got = `${actualType}${actual.character_maximum_length ? `(${actual.character_maximum_length})` : ''} ${actual.is_nullable === 'YES' ? 'NULL' : 'NOT NULL'}`;
    const typeOk = actualType === expectedType;
    const lengthOk =
      !length ||
      actual.character_maximum_length === null ||
      actual.character_maximum_length >= length;
    const nullOk = (actual.is_nullable === 'YES') === column.isNullable;
    return typeOk && lengthOk && nullOk
      ? undefined
      : `expected ${expected}, found ${got}`;
  }
}
