import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { KnoxOutageLog, isDatabaseOutage } from './knox-outage-log.js';

const T0 = Date.UTC(2030, 0, 1, 9, 0, 0);

/** An outage log on a hand-driven clock, recording its lines. */
function setup(summaryInterval = 5_000) {
  let now = T0;
  const lines: [string, string][] = [];
  const log = new KnoxOutageLog({
    summaryInterval,
    now: () => now,
    logger: {
      error: (message) => lines.push(['error', message]),
      log: (message) => lines.push(['log', message]),
    },
  });
  return {
    log,
    lines,
    at: (ms: number) => {
      now = T0 + ms;
    },
  };
}

const refused = (n = 1) =>
  new Error(`connect ECONNREFUSED 127.0.0.1:5432 (#${n})`);

describe('KnoxOutageLog', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  it('writes nothing while the database answers', () => {
    const { log, lines } = setup();
    for (let i = 0; i < 1_000; i++) {
      log.success();
    }
    expect(lines).toEqual([]);
    expect(log.isFailing).toBe(false);
  });

  it('logs the first failure at once, at ERROR, with its error', () => {
    const { log, lines } = setup();
    log.failure(refused());
    expect(lines).toEqual([
      [
        'error',
        'Database error: connect ECONNREFUSED 127.0.0.1:5432 (#1) (further failures are summarized at most every 5 s until the database answers again)',
      ],
    ]);
    expect(log.isFailing).toBe(true);
  });

  it('then at most one summary per interval (count since the last line, last error), not one line per failure', () => {
    const { log, lines, at } = setup();
    // 190 failures in 8 s, as under load: the first line, then one summary at 5 s.
    for (let i = 0; i < 190; i++) {
      at(Math.floor((i * 8_000) / 190));
      log.failure(refused(i + 1));
    }
    expect(lines).toHaveLength(2);
    const fifth = Math.ceil((5_000 * 190) / 8_000);
    expect(lines[1]).toEqual([
      'error',
      `Database still failing: ${fifth} failed in the last 5 s (${fifth + 1} since 2030-01-01T09:00:00.000Z); last error: connect ECONNREFUSED 127.0.0.1:5432 (#${fifth + 1})`,
    ]);
    // Nothing more before 10 s; the next failure after it gets the next summary.
    at(9_999);
    log.failure(refused(500));
    expect(lines).toHaveLength(2);
    at(12_000);
    log.failure(refused(501));
    expect(lines).toHaveLength(3);
    expect(lines[2][1]).toMatch(
      /^Database still failing: 72 failed in the last 7 s \(192 since 2030-01-01T09:00:00\.000Z\); last error: .*\(#501\)$/,
    );
  });

  it('logs one line when the database is back: how long, how many, those not reported yet', () => {
    const { log, lines, at } = setup();
    log.failure(refused(1));
    at(1_000);
    log.failure(refused(2));
    at(2_000);
    log.failure(refused(3));
    at(2_500);
    log.success();
    log.success();
    at(3_000);
    log.success();
    expect(lines).toEqual([
      ['error', expect.stringMatching(/^Database error: .*\(#1\)/)],
      [
        'log',
        'Database is back after 2.5 s: 3 failed (2 not reported above); last error: connect ECONNREFUSED 127.0.0.1:5432 (#3)',
      ],
    ]);
    expect(log.isFailing).toBe(false);
  });

  it('reports a later outage afresh, once the last line is an interval old', () => {
    const { log, lines, at } = setup();
    log.failure(refused(1));
    at(100);
    log.success();
    at(60_000);
    log.failure(refused(2));
    at(60_001);
    log.success();
    expect(lines.map(([level, text]) => [level, text.slice(0, 24)])).toEqual([
      ['error', 'Database error: connect '],
      ['log', 'Database is back after 0'],
      ['error', 'Database error: connect '],
      ['log', 'Database is back after 0'],
    ]);
    expect(lines[3][1]).toBe(
      'Database is back after 0 s: 1 failed; last error: connect ECONNREFUSED 127.0.0.1:5432 (#2)',
    );
  });

  it('a flapping database writes at most two lines per interval, and no failure goes uncounted', () => {
    const { log, lines, at } = setup(5_000);
    let failed = 0;
    // Fails and recovers every 50 ms for a minute.
    for (let ms = 0; ms < 60_000; ms += 50) {
      at(ms);
      if ((ms / 50) % 2 === 0) {
        log.failure(refused(++failed));
      } else {
        log.success();
      }
    }
    // A first line and a back line every 5 s.
    expect(lines).toHaveLength(2 * 12);
    expect(lines[2][1]).toBe(
      'Database error: connect ECONNREFUSED 127.0.0.1:5432 (#52) (further failures are summarized at most every 5 s until the database answers again; 50 earlier failures not reported above)',
    );
    // Each failure is counted once: by the first line, a summary, or a back line's "not reported".
    const counted = lines.reduce((sum, [, text]) => {
      const first = /^Database error: /.test(text) ? 1 : 0;
      const summary = /^Database still failing: (\d+) failed/.exec(text);
      const pending = /\((\d+) not reported above\)/.exec(text);
      return (
        sum +
        first +
        Number(summary?.[1] ?? 0) +
        Number(pending?.[1] ?? 0) +
        Number(/; (\d+) earlier failures/.exec(text)?.[1] ?? 0)
      );
    }, 0);
    // Those after the last line are still pending: the next line counts them.
    const pending = failed - counted;
    expect(pending).toBeGreaterThan(0);
    at(120_000);
    log.failure(refused(++failed));
    expect(lines[lines.length - 1][1]).toBe(
      `Database error: connect ECONNREFUSED 127.0.0.1:5432 (#${failed}) (further failures are summarized at most every 5 s until the database answers again; ${pending} earlier failures not reported above)`,
    );
  });

  it('reads Date.now by default (jest fake timers)', () => {
    jest.useFakeTimers({ now: T0 });
    const lines: string[] = [];
    const log = new KnoxOutageLog({
      logger: { error: (m) => lines.push(m), log: (m) => lines.push(m) },
    });
    log.failure('socket hang up');
    jest.advanceTimersByTime(9_000);
    log.failure(new Error('socket hang up'));
    expect(lines).toHaveLength(1);
    jest.advanceTimersByTime(1_000);
    log.failure(new Error('timeout exceeded when trying to connect'));
    jest.advanceTimersByTime(1_500);
    log.success();
    expect(lines).toEqual([
      'Database error: socket hang up (further failures are summarized at most every 10 s until the database answers again)',
      'Database still failing: 2 failed in the last 10 s (3 since 2030-01-01T09:00:00.000Z); last error: timeout exceeded when trying to connect',
      'Database is back after 11.5 s: 3 failed; last error: timeout exceeded when trying to connect',
    ]);
  });
});

describe('isDatabaseOutage', () => {
  const system = (code: string, message: string) =>
    Object.assign(new Error(message), { code });
  it('a lost, refused or timed-out connection, bare or wrapped by TypeORM', () => {
    for (const error of [
      system('ECONNRESET', 'read ECONNRESET'),
      system('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432'),
      {
        name: 'QueryFailedError',
        message: 'read ECONNRESET',
        driverError: system('ECONNRESET', 'read ECONNRESET'),
      },
      new Error('Connection terminated unexpectedly'),
      new Error('timeout exceeded when trying to connect'),
      Object.assign(
        new Error('terminating connection due to administrator command'),
        { code: '57P01' },
      ),
      Object.assign(new Error('sorry, too many clients already'), {
        code: '53300',
      }),
      new Error('wrapped', { cause: system('ETIMEDOUT', 'connect ETIMEDOUT') }),
      {
        name: 'QueryFailedError',
        message: 'SqliteError: database is locked',
        driverError: Object.assign(new Error('database is locked'), {
          code: 'SQLITE_BUSY',
        }),
      },
      Object.assign(new Error('unable to open database file'), {
        code: 'SQLITE_CANTOPEN',
      }),
      Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR_READ' }),
    ]) {
      expect({
        error: String((error as Error).message),
        outage: isDatabaseOutage(error),
      }).toEqual({
        error: String((error as Error).message),
        outage: true,
      });
    }
  });

  it("mysql2's: a lost, refused or timed-out connection, too many connections, a server going down", () => {
    const mysql = (
      code: string,
      sqlState: string | undefined,
      message: string,
    ) => Object.assign(new Error(message), { code, sqlState });
    for (const error of [
      mysql(
        'PROTOCOL_CONNECTION_LOST',
        undefined,
        'Connection lost: The server closed the connection.',
      ),
      mysql('ECONNREFUSED', undefined, 'connect ECONNREFUSED 127.0.0.1:3306'),
      mysql('ETIMEDOUT', undefined, 'connect ETIMEDOUT'),
      mysql('PROTOCOL_SEQUENCE_TIMEOUT', undefined, 'Query inactivity timeout'),
      {
        name: 'QueryFailedError',
        message: 'Too many connections',
        driverError: mysql(
          'ER_CON_COUNT_ERROR',
          '08004',
          'Too many connections',
        ),
      },
      mysql('ER_SERVER_SHUTDOWN', '08S01', 'Server shutdown in progress'),
      mysql(
        'ER_STATEMENT_TIMEOUT',
        '70100',
        'Query execution was interrupted (max_statement_time exceeded)',
      ),
      mysql('ER_QUERY_INTERRUPTED', '70100', 'Query execution was interrupted'),
      // An unknown code of the connection-exception class, by its SQLSTATE.
      mysql(
        'ER_SOMETHING_NEW',
        '08S01',
        'Got an error reading communication packets',
      ),
      Object.assign(
        new Error("Can't add new command when connection is in closed state"),
        { fatal: true },
      ),
    ]) {
      expect({
        error: String((error as Error).message),
        outage: isDatabaseOutage(error),
      }).toEqual({
        error: String((error as Error).message),
        outage: true,
      });
    }
  });

  it("mysql2's errors of a bug are not an outage: a syntax error, a missing table, a duplicate", () => {
    for (const error of [
      Object.assign(new Error("Table 'app.users' doesn't exist"), {
        code: 'ER_NO_SUCH_TABLE',
        sqlState: '42S02',
      }),
      Object.assign(new Error('You have an error in your SQL syntax'), {
        code: 'ER_PARSE_ERROR',
        sqlState: '42000',
      }),
      Object.assign(new Error("Duplicate entry 'x' for key 'PRIMARY'"), {
        code: 'ER_DUP_ENTRY',
        sqlState: '23000',
      }),
    ]) {
      expect(isDatabaseOutage(error)).toBe(false);
    }
  });

  it('a bug is not an outage: a TypeError, a missing table, a syntax error', () => {
    for (const error of [
      new TypeError('user.checkPassword is not a function'),
      {
        name: 'QueryFailedError',
        message: 'relation "users" does not exist',
        driverError: Object.assign(
          new Error('relation "users" does not exist'),
          { code: '42P01' },
        ),
      },
      Object.assign(new Error('syntax error at or near "SELEC"'), {
        code: '42601',
      }),
      Object.assign(new Error('no such table: users'), {
        code: 'SQLITE_ERROR',
      }),
      Object.assign(new Error('UNIQUE constraint failed'), {
        code: 'SQLITE_CONSTRAINT_UNIQUE',
      }),
      'a string',
      undefined,
    ]) {
      expect(isDatabaseOutage(error)).toBe(false);
    }
  });
});
