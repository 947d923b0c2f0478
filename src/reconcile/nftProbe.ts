import { CommandError, runCommand } from '../dataplane/exec.js';
import { DEFAULT_TABLE } from '../dataplane/nft/render.js';

/** Whether `table inet <table>` exists in the kernel (`-t`: without set elements; nft fails when it does not). */
export async function nftTablePresent(table = DEFAULT_TABLE, nft = 'nft'): Promise<boolean> {
  try {
    await runCommand(nft, ['-t', 'list', 'table', 'inet', table]);
    return true;
  } catch (err) {
    if (err instanceof CommandError && err.code !== null) return false;
    throw err;
  }
}
