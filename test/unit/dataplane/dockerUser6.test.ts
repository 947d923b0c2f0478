import { describe, expect, it } from 'vitest';
import type { CommandRunner } from '../../../src/dataplane/dockerUser.js';
import { DOCKER_USER_RULES, ensureDockerUserRules6, removeDockerUserRules6 } from '../../../src/dataplane/dockerUser.js';
import { CommandError } from '../../../src/dataplane/exec.js';
import { FakeIptables } from './fakeIptables.js';

const OURS = DOCKER_USER_RULES.map((r) => r.join(' '));

/** Two independent filter tables, as iptables and ip6tables are, behind one runner. */
function hosts() {
  const v4 = new FakeIptables();
  const v6 = new FakeIptables();
  const run: CommandRunner = (program, args, input) => (program === 'ip6tables' ? v6 : v4).run(program, args, input);
  return { v4, v6, options: { run } };
}

describe('ensureDockerUserRules6', () => {
  it('adds nothing where Docker does not manage ip6tables (no DOCKER-USER chain)', async () => {
    const { v4, v6, options } = hosts();
    expect(await ensureDockerUserRules6(options)).toBe(false);
    expect(v6.chains.has('DOCKER-USER')).toBe(false);
    expect(v6.rules('FORWARD')).toEqual([]);
    expect(v4.calls).toEqual([]);
  });

  it("puts portnet's accepts above Docker's RETURN in ip6tables, leaving iptables alone", async () => {
    const { v4, v6, options } = hosts();
    v6.dockerdStarts();
    expect(await ensureDockerUserRules6(options)).toBe(true);
    expect(v6.rules('DOCKER-USER')).toEqual([...OURS, '-j RETURN']);
    expect(v4.calls).toEqual([]);
    // Idempotent: a second apply changes nothing.
    expect(await ensureDockerUserRules6(options)).toBe(false);
  });

  it('is a no-op without an ip6tables binary', async () => {
    const run: CommandRunner = async (program) => {
      throw new CommandError(program, null, `spawn ${program} ENOENT`);
    };
    expect(await ensureDockerUserRules6({ run })).toBe(false);
    await expect(removeDockerUserRules6({ run })).resolves.toBeUndefined();
  });

  it('removal carries on when ip6tables exists but cannot list its table (IPv6 disabled in the kernel)', async () => {
    const run: CommandRunner = async (program) => {
      throw new CommandError(program, 3, "ip6tables v1.8.9 (nf_tables): can't initialize ip6tables table `filter'");
    };
    await expect(removeDockerUserRules6({ run })).resolves.toBeUndefined();
  });

  it("removal takes portnet's rules out of ip6tables and keeps Docker's", async () => {
    const { v6, options } = hosts();
    v6.dockerdStarts();
    await ensureDockerUserRules6(options);
    await removeDockerUserRules6(options);
    expect(v6.rules('DOCKER-USER')).toEqual(['-j RETURN']);
  });
});
