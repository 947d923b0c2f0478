// Run a program with an argument array (never a shell string) and collect its output.
import { execFile } from 'node:child_process';

export interface RunOptions {
  /** Written to the child's stdin, which is then closed. Without it stdin is closed at once. */
  input?: string | Buffer;
  /** Kill the child with SIGKILL after this long (default 60 s). */
  timeoutMs?: number;
  /** Return the result instead of throwing when the exit status is not 0 (or the child timed out). */
  allowFail?: boolean;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface RunResult {
  /** Exit status; -1 when the child was killed (timeout or signal) or could not start. */
  code: number;
  stdout: string;
  stderr: string;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly result: RunResult,
  ) {
    const why = result.timedOut
      ? 'timed out'
      : result.signal
        ? `was killed by ${result.signal}`
        : `exited with status ${result.code}`;
    const stderr = result.stderr.trim() || '(empty)';
    const stdout = result.stdout.trim();
    super(`${command} ${why}\nstderr: ${stderr}${stdout ? `\nstdout: ${truncate(stdout, 2000)}` : ''}`);
    this.name = 'CommandError';
  }
}

/** `cmd a 'b c'` for messages: quotes arguments that contain anything but safe characters. */
export function formatCommand(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(' ');
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n)}… (${s.length - n} more characters)` : s;
}

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args as string[],
      {
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        env: opts.env ?? process.env,
        cwd: opts.cwd,
      },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { killed?: boolean; signal?: NodeJS.Signals | null }) | null;
        const spawnFailed = e !== null && typeof e.code === 'string';
        const result: RunResult = {
          code: e === null ? 0 : typeof e.code === 'number' ? e.code : -1,
          stdout,
          stderr: spawnFailed ? `${stderr}${e.message}` : stderr,
          signal: e?.signal ?? null,
          timedOut: e !== null && e.killed === true && e.signal === 'SIGKILL',
        };
        if (e === null || opts.allowFail) resolve(result);
        else reject(new CommandError(formatCommand(cmd, args), result));
      },
    );
    child.stdin?.on('error', () => {}); // the child may exit before reading its input (EPIPE)
    child.stdin?.end(opts.input ?? '');
  });
}

/** run() and return trimmed stdout. */
export async function output(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  return (await run(cmd, args, opts)).stdout.trim();
}
