/**
 * The time source of the module. Override it to control expiry in tests:
 *
 * @example
 * const clock = { now: () => new Date('2030-01-01T00:00:00Z') };
 * Test.createTestingModule({ imports: [AppModule] })
 *   .overrideProvider(KnoxClock).useValue(clock);
 */
export abstract class KnoxClock {
  /** The current time. */
  abstract now(): Date;
}

/** The default clock: the system's. */
export class SystemKnoxClock extends KnoxClock {
  /** `new Date()`. */
  now(): Date {
    return new Date();
  }
}
