// Preloaded (node --import) by a test: better-sqlite3 cannot be resolved, as in an app that did
// not install the optional peer. TypeORM requires it by name, then under process.cwd().
import Module from 'node:module';

const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (
    request === 'better-sqlite3' ||
    request.endsWith('/node_modules/better-sqlite3')
  ) {
    const error = new Error(
      "Cannot find module 'better-sqlite3' (hidden by the test)",
    );
    error.code = 'MODULE_NOT_FOUND';
    throw error;
  }
  return resolve.call(this, request, ...rest);
};
