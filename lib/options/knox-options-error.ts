/** Thrown at boot when an option is wrong; the message says what to fix. */
export class KnoxOptionsError extends Error {
  constructor(message: string) {
    super(`KnoxModule: ${message}`);
    this.name = 'KnoxOptionsError';
  }
}
