// A registry of undo steps so each test removes what it made, also when it fails.
import { afterAll, afterEach } from 'vitest';

type Step = { what: string; fn: () => unknown };

export class Cleanup {
  private steps: Step[] = [];

  /** Register an undo step. Steps run last-in first-out (containers before their network before the plugin). */
  defer(what: string, fn: () => unknown): void {
    this.steps.push({ what, fn });
  }

  get size(): number {
    return this.steps.length;
  }

  /** Run every step (LIFO), even after one fails; throw one error listing all failures. */
  async run(): Promise<void> {
    const errors: string[] = [];
    while (this.steps.length > 0) {
      const s = this.steps.pop()!;
      try {
        await s.fn();
      } catch (e) {
        errors.push(`${s.what}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    if (errors.length > 0) throw new Error(`cleanup failed:\n- ${errors.join('\n- ')}`);
  }
}

/**
 * A Cleanup whose steps run after each test ('each', the default) or after the file's tests ('all').
 * Call it at the top of a describe block or file.
 */
export function useCleanup(scope: 'each' | 'all' = 'each'): Cleanup {
  const c = new Cleanup();
  (scope === 'each' ? afterEach : afterAll)(() => c.run(), 180_000);
  return c;
}

/** Runs a test body with its own cleanup scope, emptied when the body ends, passed or failed. */
export async function scoped(body: (local: Cleanup) => Promise<void>): Promise<void> {
  const local = new Cleanup();
  try {
    await body(local);
  } finally {
    await local.run();
  }
}
