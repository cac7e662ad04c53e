/**
 * The time constants of the tests, in one place. `T0` is where every `FakeClock` starts
 * (`test/support/fixtures.ts`); durations are milliseconds, as the knox options take them.
 * `sessions.ts` and `http.ts` re-export them for the files that import them from there.
 */
export const T0 = new Date('2030-01-01T00:00:00.000Z');
export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;
