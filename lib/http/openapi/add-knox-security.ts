/** Names of the security schemes that {@link addKnoxSecurity} adds and the guarded routes require. */
export const KNOX_SECURITY_SCHEMES = {
  token: 'Token',
  bearer: 'Bearer',
  basic: 'Basic',
} as const;

/** The part of `@nestjs/swagger`'s `DocumentBuilder` that {@link addKnoxSecurity} uses. */
export interface KnoxDocumentBuilder {
  addApiKey(options: KnoxSecuritySchemeObject, name: string): this;
  addBearerAuth(options: KnoxSecuritySchemeObject, name: string): this;
  addBasicAuth(options: KnoxSecuritySchemeObject, name: string): this;
}

/** An OpenAPI security scheme, as {@link addKnoxSecurity} passes it to the builder. */
export interface KnoxSecuritySchemeObject {
  type: 'apiKey' | 'http' | 'oauth2' | 'openIdConnect';
  in?: string;
  name?: string;
  scheme?: string;
  bearerFormat?: string;
  description?: string;
  [extension: `x-${string}`]: unknown;
}

/** Options of {@link addKnoxSecurity}. */
export interface KnoxOpenApiSecurityOptions {
  /**
   * Also add the `Bearer` scheme (`Authorization: Bearer …`), accepted when `authHeaderPrefix`
   * lists it.
   * @default true
   */
  bearer?: boolean;
  /**
   * Also add the `Basic` scheme, which `POST {path}/login` accepts for credentials.
   * @default true
   */
  basic?: boolean;
}

/**
 * Adds the security schemes the knox routes require to a `DocumentBuilder`: `Token` (an API key
 * in the `Authorization` header, sent as `Token <token>`), `Bearer` and `Basic` (login).
 *
 * @example
 * import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
 * import { addKnoxSecurity } from 'nestjs-knox';
 *
 * const config = addKnoxSecurity(new DocumentBuilder().setTitle('My API')).build();
 * SwaggerModule.setup('docs', app, () => SwaggerModule.createDocument(app, config));
 */
export function addKnoxSecurity<B extends KnoxDocumentBuilder>(
  builder: B,
  options: KnoxOpenApiSecurityOptions = {},
): B {
  builder.addApiKey(
    {
      type: 'apiKey',
      in: 'header',
      name: 'Authorization',
      description: 'The token with its scheme: `Token <token>`.',
    },
    KNOX_SECURITY_SCHEMES.token,
  );
  if (options.bearer ?? true) {
    builder.addBearerAuth(
      {
        type: 'http',
        scheme: 'bearer',
        // Not a JWT (@nestjs/swagger's default): an opaque token.
        bearerFormat: 'opaque',
        description: 'The token as `Authorization: Bearer <token>`.',
      },
      KNOX_SECURITY_SCHEMES.bearer,
    );
  }
  if (options.basic ?? true) {
    builder.addBasicAuth(
      {
        type: 'http',
        scheme: 'basic',
        description: 'Username and password, for `POST login`.',
      },
      KNOX_SECURITY_SCHEMES.basic,
    );
  }
  return builder;
}
