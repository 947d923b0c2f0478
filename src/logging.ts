import { pino, type Logger } from 'pino';
import { build as pretty } from 'pino-pretty';

export type LogFormat = 'json' | 'pretty';

export interface LoggerOptions {
  level: string;
  /** Default: `PORTNET_LOG_FORMAT` (json | pretty), else pretty when stdout is a terminal, else JSON lines. */
  format?: LogFormat;
}

/** The format to use when none is forced: people at a terminal get readable lines, pipes and journald get JSON. */
export function defaultLogFormat(env: NodeJS.ProcessEnv = process.env, isTty = process.stdout.isTTY === true): LogFormat {
  const forced = env.PORTNET_LOG_FORMAT;
  if (forced === 'json' || forced === 'pretty') return forced;
  return isTty ? 'pretty' : 'json';
}

/**
 * The plugin's logger: pino JSON lines on stdout (one per protocol call, see server/app.ts), or the
 * same records made readable by pino-pretty. Both write synchronously, so the last lines before a
 * process.exit() are never lost.
 */
export function createLogger(options: LoggerOptions): Logger {
  const format = options.format ?? defaultLogFormat();
  const base = { level: options.level, base: { name: 'portnet' } };
  if (format === 'json') return pino(base);
  return pino(base, pretty({ colorize: process.stdout.isTTY === true, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' }));
}
