import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { Repository } from 'typeorm';
import { TypeOrmModule, getRepositoryToken } from '@nestjs/typeorm';
import { KNOX_MODULE_EXTRAS, KNOX_TOKEN_REPOSITORY } from './knox.constants.js';
import { knoxTokenEntity } from './store/knox-token.entity.js';
import { knoxDialectOf } from './store/knox-dialect.js';
import { createKnoxController } from './http/knox.controller.js';
import { knoxOpenApiProvider } from './http/openapi/knox-openapi.js';
import { KNOX_OPTIONS } from './options/knox-options.js';
import { KnoxOptionsError } from './options/knox-options-error.js';
import { createKnoxAdminController } from './admin/knox-admin.controller.js';
import { knoxAdminOpenApiProvider } from './admin/knox-admin-openapi.js';
import { nearestKey } from './options/knox-option-table.js';
import type {
  KnoxModuleExtras,
  KnoxModuleOptions,
} from './options/knox-module-options.interface.js';

const EXTRAS_DEFAULTS: KnoxModuleExtras = {
  userEntity: undefined as never,
  isGlobal: true,
  controller: true,
  path: 'auth',
  tableName: 'knox_authtoken',
  schema: 'knox',
  dataSource: undefined,
};

const built = new ConfigurableModuleBuilder<KnoxModuleOptions>({
  moduleName: 'Knox',
})
  .setClassMethodName('forRoot')
  .setExtras<KnoxModuleExtras>(EXTRAS_DEFAULTS, (definition, given) => {
    const async = isAsync(definition);
    if (async) {
      rejectAsyncStrays(given);
    }
    const extras = checkExtras({ ...EXTRAS_DEFAULTS, ...given });
    const { path, tableName, schema } = extras;
    const entity = knoxTokenEntity(extras.userEntity, { tableName, schema });
    const controller =
      extras.controller === false ? undefined : createKnoxController(path);
    // The admin's routes exist only with the `admin` option. forRootAsync's options come after
    // the routes are mounted: there they are mounted, and answer 404 without the option.
    const admin =
      controller && (async || hasAdmin(given))
        ? createKnoxAdminController(path)
        : undefined;
    return {
      ...definition,
      global: extras.isGlobal ?? true,
      imports: [
        ...(definition.imports ?? []),
        TypeOrmModule.forFeature([entity], extras.dataSource),
      ],
      controllers: [
        ...(definition.controllers ?? []),
        ...(controller ? [controller] : []),
        ...(admin ? [admin] : []),
      ],
      providers: [
        ...(definition.providers ?? []),
        { provide: KNOX_MODULE_EXTRAS, useValue: extras },
        knoxOpenApiProvider(controller),
        ...(admin ? [knoxAdminOpenApiProvider(admin)] : []),
        {
          provide: KNOX_TOKEN_REPOSITORY,
          // A driver the library has no statements for stops the boot here, before any
          // provider sends one (KnoxUnsupportedDriverError).
          useFactory: (repository: Repository<object>) => {
            knoxDialectOf(repository.manager.connection);
            return repository;
          },
          inject: [getRepositoryToken(entity, extras.dataSource)],
        },
      ],
    };
  })
  .build();

/** The module settings with defaults applied, checked; throws with what to fix. */
function checkExtras(
  extras: KnoxModuleExtras,
): KnoxModuleExtras &
  Required<Pick<KnoxModuleExtras, 'path' | 'tableName' | 'schema'>> {
  if (typeof extras.userEntity !== 'function') {
    throw new KnoxOptionsError(
      '`userEntity` is required: pass your TypeORM user entity class, e.g. KnoxModule.forRoot({ userEntity: User, validateUser }).',
    );
  }
  const path = extras.path ?? 'auth';
  if (typeof path !== 'string' || /\s/.test(path)) {
    throw new KnoxOptionsError(
      `\`path\` must be a route path without spaces, e.g. 'auth'; got ${String(path)}.`,
    );
  }
  const tableName = extras.tableName ?? 'knox_authtoken';
  if (
    typeof tableName !== 'string' ||
    !/^[A-Za-z_][A-Za-z0-9_.]*$/.test(tableName)
  ) {
    throw new KnoxOptionsError(
      `\`tableName\` must be a plain SQL identifier (letters, digits, _); got ${String(tableName)}.`,
    );
  }
  const schema = extras.schema ?? 'knox';
  if (schema !== 'knox' && schema !== 'django') {
    throw new KnoxOptionsError(
      `\`schema\` must be 'knox' (a table nestjs-knox creates) or 'django' (a django-rest-knox table taken over by knoxMigrations(User, { schema: 'django' })); got ${String(schema)}.`,
    );
  }
  return { ...extras, path, tableName, schema };
}

/** Whether `forRoot` was given the `admin` option (an object, not `false`). */
function hasAdmin(given: object): boolean {
  const admin = (given as { admin?: unknown }).admin;
  return admin !== undefined && admin !== null && admin !== false;
}

/** Whether the definition comes from `forRootAsync` (its options come from a provider). */
function isAsync(definition: { providers?: unknown[] }): boolean {
  return (definition.providers ?? []).some(
    (provider) =>
      typeof provider === 'object' &&
      provider !== null &&
      !('useValue' in provider),
  );
}

/**
 * Keys given to `forRootAsync` beside `useFactory` that are not settings: Nest would drop them
 * silently, so an option put there (instead of in what the factory returns) is an error.
 */
function rejectAsyncStrays(given: object): void {
  const settings = Object.keys(EXTRAS_DEFAULTS);
  for (const key of Object.keys(given)) {
    if (settings.includes(key)) {
      continue;
    }
    if (key in KNOX_OPTIONS) {
      throw new KnoxOptionsError(
        `\`${key}\` is an option, not a module setting: with forRootAsync, return it from the factory (useFactory: () => ({ ${key}: …, validateUser })), not beside it.`,
      );
    }
    const near = nearestKey(key, [...settings, ...Object.keys(KNOX_OPTIONS)]);
    throw new KnoxOptionsError(
      `unknown setting '${key}' given to forRootAsync()${near ? ` — did you mean '${near}'?` : ''}`,
    );
  }
}

/** The base class `KnoxModule` extends: `forRoot` / `forRootAsync`. */
export const KnoxConfigurableModuleClass = built.ConfigurableModuleClass;

/** Injection token of the options as given to `forRoot` / returned by the async factory. */
export const KNOX_MODULE_OPTIONS = built.MODULE_OPTIONS_TOKEN;

/** Type carrier: `typeof KNOX_OPTIONS_TYPE` is what `KnoxModule.forRoot()` takes. */
export const KNOX_OPTIONS_TYPE = built.OPTIONS_TYPE;

/** Type carrier: `typeof KNOX_ASYNC_OPTIONS_TYPE` is what `KnoxModule.forRootAsync()` takes. */
export const KNOX_ASYNC_OPTIONS_TYPE = built.ASYNC_OPTIONS_TYPE;
