import { ConfigurableModuleBuilder } from '@nestjs/common';
import { TypeOrmModule, getRepositoryToken } from '@nestjs/typeorm';
import { KNOX_MODULE_EXTRAS, KNOX_TOKEN_REPOSITORY } from './knox.constants.js';
import { knoxTokenEntity } from './store/knox-token.entity.js';
import { createKnoxController } from './http/knox.controller.js';
import { knoxOpenApiProvider } from './http/openapi/knox-openapi.js';
import { KNOX_OPTIONS } from './options/knox-options.js';
import { KnoxOptionsError } from './options/knox-options-error.js';
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
    if (isAsync(definition)) {
      rejectAsyncStrays(given);
    }
    const extras = checkExtras({ ...EXTRAS_DEFAULTS, ...given });
    const { path, tableName, schema } = extras;
    const entity = knoxTokenEntity(extras.userEntity, { tableName, schema });
    const controller =
      extras.controller === false ? undefined : createKnoxController(path);
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
      ],
      providers: [
        ...(definition.providers ?? []),
        { provide: KNOX_MODULE_EXTRAS, useValue: extras },
        knoxOpenApiProvider(controller),
        {
          provide: KNOX_TOKEN_REPOSITORY,
          useExisting: getRepositoryToken(entity, extras.dataSource),
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
