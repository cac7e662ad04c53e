import {
  ExampleStartError,
  optionsFromEnv,
  startExample,
  type RunningExample,
} from './bootstrap.js';

let example: RunningExample;
try {
  example = await startExample(optionsFromEnv());
} catch (error) {
  console.error(
    error instanceof ExampleStartError
      ? `Could not start the example: ${error.message}`
      : error,
  );
  process.exit(1);
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    example.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  });
}
