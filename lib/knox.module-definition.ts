import { ConfigurableModuleBuilder } from '@nestjs/common';
import { TypeOrmModule, getRepositoryToken } from '@nestjs/typeorm';
import { KNOX_MODULE_EXTRAS, KNOX_TOKEN_REPOSITORY } from './knox.constants.js';
import { knoxTokenEntity } from './store/knox-token.entity.js';
import { createKnoxController } from './http/knox.controller.js';
import { KnoxOptionsError } from './options/knox-options.js';
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
    const extras = { ...EXTRAS_DEFAULTS, ...given };
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
    const entity = knoxTokenEntity(extras.userEntity, { tableName, schema });
    return {
      ...definition,
      global: extras.isGlobal ?? true,
      imports: [
        ...(definition.imports ?? []),
        TypeOrmModule.forFeature([entity], extras.dataSource),
      ],
      controllers: [
        ...(definition.controllers ?? []),
        ...(extras.controller === false ? [] : [createKnoxController(path)]),
      ],
      providers: [
        ...(definition.providers ?? []),
        { provide: KNOX_MODULE_EXTRAS, useValue: extras },
        {
          provide: KNOX_TOKEN_REPOSITORY,
          useExisting: getRepositoryToken(entity, extras.dataSource),
        },
      ],
    };
  })
  .build();

/** The base class `KnoxModule` extends: `forRoot` / `forRootAsync`. */
export const KnoxConfigurableModuleClass = built.ConfigurableModuleClass;

/** Injection token of the options as given to `forRoot` / returned by the async factory. */
export const KNOX_MODULE_OPTIONS = built.MODULE_OPTIONS_TOKEN;

/** Type carrier: `typeof KNOX_OPTIONS_TYPE` is what `KnoxModule.forRoot()` takes. */
export const KNOX_OPTIONS_TYPE = built.OPTIONS_TYPE;

/** Type carrier: `typeof KNOX_ASYNC_OPTIONS_TYPE` is what `KnoxModule.forRootAsync()` takes. */
export const KNOX_ASYNC_OPTIONS_TYPE = built.ASYNC_OPTIONS_TYPE;
