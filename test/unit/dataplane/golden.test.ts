import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { renderRuleset } from '../../../src/dataplane/nft/render.js';
import { GOLDEN_MODELS } from './fixtures.js';

/**
 * The rendered ruleset, compared as exact text: any change to the rules shows up as a diff a reviewer
 * can read. After an intended change: UPDATE_GOLDEN=1 npx vitest run --project unit test/unit/dataplane
 * (test/integration/firewall checks that nft accepts every golden file).
 */
const update = process.env.UPDATE_GOLDEN === '1';

function goldenPath(name: string): string {
  return fileURLToPath(new URL(`./golden/${name}.nft`, import.meta.url));
}

describe('rendered ruleset matches its golden file', () => {
  for (const [name, model] of Object.entries(GOLDEN_MODELS)) {
    it(name, () => {
      const text = renderRuleset(model);
      const file = goldenPath(name);
      if (update) writeFileSync(file, text);
      expect(existsSync(file), `${file} missing; run with UPDATE_GOLDEN=1`).toBe(true);
      expect(text).toBe(readFileSync(file, 'utf8'));
    });
  }
});
