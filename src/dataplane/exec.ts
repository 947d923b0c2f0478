import { spawn } from 'node:child_process';

export class CommandError extends Error {
  override name = 'CommandError';
  constructor(
    readonly command: string,
    readonly code: number | null,
    readonly stderr: string,
  ) {
    super(`${command} failed (exit ${code}): ${stderr.trim() || '(no message)'}`);
  }
}

/**
 * Runs a program with an argument array (never a shell) and optional stdin, resolving with stdout.
 * Batch text for `ip -batch -` and `nft -f -` goes through stdin so no input ever meets a shell.
 */
export function runCommand(program: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => reject(new CommandError(`${program} ${args.join(' ')}`, null, e.message)));
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString());
      else reject(new CommandError(`${program} ${args.join(' ')}`, code, Buffer.concat(err).toString()));
    });
    child.stdin.on('error', () => {}); // the close handler reports the failure
    child.stdin.end(input ?? '');
  });
}
