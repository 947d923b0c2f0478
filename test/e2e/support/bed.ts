// Test-bed prerequisites and progress lines for e2e tests.
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import { run } from './exec.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
/** Logs, state dirs and other scratch files of test runs (git-ignored). */
export const SCRATCH_DIR = resolve(REPO_ROOT, '.testbed');

const t0 = Date.now();

/** A progress line on stderr with seconds since this test file started: `[e2e   12.3s] msg`. */
export function step(msg: string): void {
  const s = ((Date.now() - t0) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[e2e ${s}s] ${msg}\n`);
}

let prepared: Promise<void> | undefined;

/**
 * Runs scripts/testbed/prepare.sh once per process: apt packages, dockerd, the test image and the
 * unreachable routes for the test ranges (about 0.2 s when everything is in place). Call it in beforeAll
 * of every e2e file so the e2e project also works without scripts/test.sh.
 */
export function ensureTestbed(): Promise<void> {
  prepared ??= (async () => {
    step('test bed: scripts/testbed/prepare.sh');
    const r = await run('bash', [resolve(REPO_ROOT, 'scripts/testbed/prepare.sh')], { timeoutMs: 600_000 });
    for (const line of r.stderr.trim().split('\n')) if (line) step(`  ${line}`);
  })();
  return prepared;
}
