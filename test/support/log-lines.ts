import type { LoggerService } from '@nestjs/common';

/** One call to the app's logger. */
export interface LogEntry {
  level: string;
  text: string;
  /** The lines it would print: its message, and the stack of any error passed. */
  lines: number;
}

function linesOf(value: unknown): number {
  if (value instanceof Error) {
    return (value.stack ?? value.message).split('\n').length;
  }
  return typeof value === 'string' ? value.split('\n').length : 1;
}

/**
 * A Nest logger that keeps what the app logs and counts the lines a console logger would
 * write (an error's stack counts each of its lines). Install it with `app.useLogger(log)` in
 * `configureApp`: Nest's own loggers (the exceptions handler) and the library's write here.
 */
export class LogLines implements LoggerService {
  entries: LogEntry[] = [];

  private record(level: string, message: unknown, params: unknown[]): void {
    // The last string parameter is the context (as ConsoleLogger reads it): not a line.
    const rest =
      typeof params[params.length - 1] === 'string'
        ? params.slice(0, -1)
        : params;
    const values = [message, ...rest];
    this.entries.push({
      level,
      text: values
        .map((v) => (v instanceof Error ? (v.stack ?? v.message) : String(v)))
        .join(' '),
      lines: values.reduce<number>((sum, v) => sum + linesOf(v), 0),
    });
  }

  log(message: unknown, ...params: unknown[]): void {
    this.record('log', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.record('error', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.record('warn', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.record('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]): void {
    this.record('verbose', message, params);
  }
  fatal(message: unknown, ...params: unknown[]): void {
    this.record('fatal', message, params);
  }

  /** Lines logged at `error` / `fatal` / `warn`, or at any level. */
  lines(levels: string[] = ['error', 'fatal', 'warn', 'log']): number {
    return this.entries
      .filter((e) => levels.includes(e.level))
      .reduce((sum, e) => sum + e.lines, 0);
  }

  reset(): void {
    this.entries = [];
  }
}
