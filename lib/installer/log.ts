/**
 * One JSON object per line: `{"level":"info","msg":"...", ...fields}`. Errors carry a `fix` field saying what
 * the operator can do. Lines below the configured level are dropped.
 */
import { LOG_LEVELS, LogLevel } from '../catalog';

export type LogFields = Record<string, unknown>;

export interface Logger {
  error(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
}

/** Where a JSON logger writes its lines. */
export type LineSink = (line: string) => void;

export class JsonLogger implements Logger {
  private readonly threshold: number;

  constructor(
    level: LogLevel,
    private readonly sink: LineSink = (line) => process.stdout.write(line + '\n'),
  ) {
    this.threshold = LOG_LEVELS.indexOf(level);
  }

  error(msg: string, fields?: LogFields): void {
    this.write('error', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.write('warn', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.write('info', msg, fields);
  }
  debug(msg: string, fields?: LogFields): void {
    this.write('debug', msg, fields);
  }

  private write(level: LogLevel, msg: string, fields?: LogFields): void {
    if (LOG_LEVELS.indexOf(level) > this.threshold) return;
    this.sink(JSON.stringify({ level, msg, time: new Date().toISOString(), ...fields }));
  }
}

/** Collects log records in memory (tests). */
export class MemoryLogger implements Logger {
  readonly records: Array<{ level: LogLevel; msg: string } & LogFields> = [];
  error(msg: string, fields?: LogFields): void {
    this.records.push({ level: 'error', msg, ...fields });
  }
  warn(msg: string, fields?: LogFields): void {
    this.records.push({ level: 'warn', msg, ...fields });
  }
  info(msg: string, fields?: LogFields): void {
    this.records.push({ level: 'info', msg, ...fields });
  }
  debug(msg: string, fields?: LogFields): void {
    this.records.push({ level: 'debug', msg, ...fields });
  }
}
