/*
 * The OpenAPI description of the HTTP API, applied with `@nestjs/swagger`'s own decorators when
 * the app has it installed (an optional peer, imported lazily), so that `SwaggerModule` lists the
 * real routes with their bodies, answers, status codes, tag and security, and leaves out the
 * 405 handlers. Route methods are described by name from one table: a method the controller
 * class lacks is skipped, a new route is described by adding an entry.
 */
import type { Provider } from '@nestjs/common';
import { KnoxController } from '../knox.controller.js';
import { KNOX_SECURITY_SCHEMES } from './add-knox-security.js';
import { KNOX_ROUTE_DOCS, type KnoxRouteDoc } from './knox-openapi.routes.js';
import { UNAUTHORIZED, UNAVAILABLE } from './knox-openapi.schemas.js';

/** The tag of the module's operations. */
const KNOX_OPENAPI_TAG = 'auth';

/** Functions already described (the metadata is on the function, shared by every subclass). */
const described = new WeakSet<object>();

/**
 * The decorators of `@nestjs/swagger` this file applies, written out so that the package's type
 * declarations do not import it: apps without it type-check them (`skipLibCheck: false`).
 */
export interface SwaggerApi {
  ApiOperation(options: object): MethodDecorator;
  ApiBody(options: object): MethodDecorator;
  ApiParam(options: object): MethodDecorator;
  ApiResponse(options: object): MethodDecorator;
  ApiSecurity(name: string | Record<string, string[]>): MethodDecorator;
  ApiTags(...tags: string[]): ClassDecorator;
}

/**
 * Applies the OpenAPI decorators to the route methods of `controller` (and the classes it
 * extends), from {@link KNOX_ROUTE_DOCS}. Idempotent.
 */
export function applyKnoxOpenApi(
  swagger: SwaggerApi,
  controller: abstract new (...args: never[]) => unknown,
  docs: Record<string, KnoxRouteDoc> = KNOX_ROUTE_DOCS,
): void {
  for (const [name, descriptor] of routeMethods(controller)) {
    if (described.has(descriptor.value as object)) {
      continue;
    }
    const decorators = docs[name] ? decoratorsFor(swagger, docs[name]) : [];
    for (const decorate of decorators) {
      decorate(controller.prototype as object, name, descriptor);
    }
    described.add(descriptor.value as object);
  }
}

/** Every method of the class and its ancestors, nearest definition first. */
function routeMethods(
  controller: abstract new (...args: never[]) => unknown,
): Map<string, PropertyDescriptor> {
  const methods = new Map<string, PropertyDescriptor>();
  for (
    let proto = controller.prototype as object | null;
    proto && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto) as object | null
  ) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      const descriptor = Object.getOwnPropertyDescriptor(proto, name);
      if (
        name !== 'constructor' &&
        !methods.has(name) &&
        typeof descriptor?.value === 'function'
      ) {
        methods.set(name, descriptor);
      }
    }
  }
  return methods;
}

/** The decorators that describe one route: operation, body, params, answers, security. */
function decoratorsFor(
  swagger: SwaggerApi,
  doc: KnoxRouteDoc,
): MethodDecorator[] {
  return [
    swagger.ApiOperation({
      summary: doc.summary,
      description: doc.description,
    }),
    ...(doc.body
      ? [
          swagger.ApiBody({
            description: doc.body.description,
            required: doc.body.required,
            schema: doc.body.schema,
          }),
        ]
      : []),
    ...(doc.params ?? []).map((param) =>
      swagger.ApiParam({
        name: param.name,
        description: param.description,
        type: String,
      }),
    ),
    ...responseDecorators(swagger, doc),
    ...securityDecorators(swagger, doc.guarded),
  ];
}

/** The route's answers; a guarded route also answers 401 and 503. */
function responseDecorators(
  swagger: SwaggerApi,
  doc: KnoxRouteDoc,
): MethodDecorator[] {
  const responses = doc.guarded
    ? [...doc.responses, UNAUTHORIZED, UNAVAILABLE]
    : doc.responses;
  return responses.map((response) =>
    swagger.ApiResponse({
      status: response.status,
      description: response.description,
      ...(response.schema ? { schema: response.schema } : {}),
      ...(response.headers ? { headers: response.headers } : {}),
    }),
  );
}

/** A guarded route takes a token (`Token` or `Bearer`); login takes Basic or a JSON body. */
function securityDecorators(
  swagger: SwaggerApi,
  guarded: boolean,
): MethodDecorator[] {
  return guarded
    ? [
        swagger.ApiSecurity(KNOX_SECURITY_SCHEMES.token),
        swagger.ApiSecurity(KNOX_SECURITY_SCHEMES.bearer),
      ]
    : [
        swagger.ApiSecurity(KNOX_SECURITY_SCHEMES.basic),
        swagger.ApiSecurity({}),
      ];
}

/**
 * Imports `@nestjs/swagger` if the app has it and describes the routes of {@link KnoxController}
 * (so also those of any subclass), and tags the controller the module mounts. Without it, does
 * nothing.
 */
export async function describeKnoxRoutes(
  mounted?: abstract new (...args: never[]) => unknown,
): Promise<boolean> {
  let swagger: SwaggerApi;
  try {
    swagger = await import('@nestjs/swagger');
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      return false;
    }
    throw error;
  }
  applyKnoxOpenApi(swagger, KnoxController);
  if (mounted && !described.has(mounted)) {
    swagger.ApiTags(KNOX_OPENAPI_TAG)(mounted);
    described.add(mounted);
  }
  return true;
}

/** Token of the provider below; its value says whether the routes were described. */
export const KNOX_OPENAPI = Symbol('KNOX_OPENAPI');

/**
 * Describes the routes while the app is built (an async provider is awaited before
 * `NestFactory.create` returns), so before the app can call `SwaggerModule.createDocument`.
 * `mounted`: the controller class the module mounts, if any (it gets the `auth` tag).
 */
export function knoxOpenApiProvider(
  mounted?: abstract new (...args: never[]) => unknown,
): Provider {
  return {
    provide: KNOX_OPENAPI,
    useFactory: () => describeKnoxRoutes(mounted),
  };
}
