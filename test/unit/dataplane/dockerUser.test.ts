import { describe, expect, it } from 'vitest';
import {
  DOCKER_USER_RULES,
  ensureDockerUserRules,
  isPortnetRule,
  removeDockerUserRules,
  ruleArgs,
} from '../../../src/dataplane/dockerUser.js';
import { FakeIptables } from './fakeIptables.js';

const OURS = DOCKER_USER_RULES.map((r) => r.join(' '));

function setup(state: 'fresh' | 'docker' = 'fresh') {
  const ipt = new FakeIptables();
  if (state === 'docker') ipt.dockerdStarts();
  return { ipt, options: { run: ipt.run } };
}

const jumps = (ipt: FakeIptables) => ipt.rules('FORWARD').filter((r) => r === '-j DOCKER-USER').length;

describe('ensureDockerUserRules', () => {
  it('on a host without Docker makes the chain, the jump and the rules', async () => {
    const { ipt, options } = setup();
    expect(await ensureDockerUserRules(options)).toBe(true);
    expect(ipt.rules('DOCKER-USER')).toEqual(OURS);
    expect(ipt.rules('FORWARD')).toEqual(['-j DOCKER-USER']);
  });

  it('with Docker running adds no chain or jump of its own and goes above RETURN', async () => {
    const { ipt, options } = setup('docker');
    await ensureDockerUserRules(options);
    expect(ipt.rules('DOCKER-USER')).toEqual([...OURS, '-j RETURN']);
    expect(jumps(ipt)).toBe(1);
    expect(ipt.calls.some((c) => c.includes('-N'))).toBe(false);
  });

  it('when everything is in place it only lists (one call) and reports no change', async () => {
    const { ipt, options } = setup('docker');
    await ensureDockerUserRules(options);
    ipt.calls.length = 0;
    expect(await ensureDockerUserRules(options)).toBe(false);
    expect(ipt.calls).toEqual([['-w', '5', '-t', 'filter', '-S']]);
  });

  it('dockerd starting after portnet keeps portnet effective and nothing is duplicated', async () => {
    const { ipt, options } = setup();
    await ensureDockerUserRules(options);
    ipt.dockerdStarts();
    expect(ipt.rules('DOCKER-USER')).toEqual([...OURS, '-j RETURN']);
    expect(jumps(ipt)).toBe(1);
    expect(await ensureDockerUserRules(options)).toBe(false);
  });

  it('puts the rules back after a flush (firewall reload)', async () => {
    const { ipt, options } = setup('docker');
    await ensureDockerUserRules(options);
    ipt.rules('DOCKER-USER').splice(0);
    ipt.rules('DOCKER-USER').push('-j RETURN');
    expect(await ensureDockerUserRules(options)).toBe(true);
    expect(ipt.rules('DOCKER-USER')).toEqual([...OURS, '-j RETURN']);
  });

  it('repairs a partial or reordered set without duplicates', async () => {
    const { ipt, options } = setup('docker');
    await ensureDockerUserRules(options);
    const rules = ipt.rules('DOCKER-USER');
    rules.splice(1, 1); // one lost
    rules.reverse(); // RETURN now first, ours below it
    await ensureDockerUserRules(options);
    expect(ipt.rules('DOCKER-USER').filter(isTagged)).toEqual(OURS);
    expect(ipt.rules('DOCKER-USER').slice(0, OURS.length)).toEqual(OURS);
  });

  it("leaves an operator's rule above portnet's where it is", async () => {
    const { ipt, options } = setup('docker');
    await ensureDockerUserRules(options);
    ipt.rules('DOCKER-USER').unshift('-i pn+ -p tcp --dport 25 -j DROP');
    expect(await ensureDockerUserRules(options)).toBe(false);
    expect(ipt.rules('DOCKER-USER')[0]).toBe('-i pn+ -p tcp --dport 25 -j DROP');
  });
});

describe('removeDockerUserRules', () => {
  it("with Docker removes only portnet's rules", async () => {
    const { ipt, options } = setup('docker');
    await ensureDockerUserRules(options);
    await removeDockerUserRules(options);
    expect(ipt.rules('DOCKER-USER')).toEqual(['-j RETURN']);
    expect(jumps(ipt)).toBe(1);
  });

  it('without Docker also removes the chain and the jump portnet made', async () => {
    const { ipt, options } = setup();
    const pristine = ipt.listing();
    await ensureDockerUserRules(options);
    await removeDockerUserRules(options);
    expect(ipt.listing()).toBe(pristine);
  });

  it('is a no-op when nothing is there, or when iptables is not installed', async () => {
    const { ipt, options } = setup();
    await removeDockerUserRules(options);
    expect(ipt.listing()).toBe(new FakeIptables().listing());
    ipt.missing = true;
    await expect(removeDockerUserRules(options)).resolves.toBeUndefined();
  });

  it('ensure still fails loudly when iptables is missing', async () => {
    const { ipt, options } = setup();
    ipt.missing = true;
    await expect(ensureDockerUserRules(options)).rejects.toThrow(/ENOENT/);
  });
});

describe('iptables -S lines', () => {
  it('recognises the portnet tag, quoted or not, and nothing that merely starts with it', () => {
    expect(isPortnetRule('-A DOCKER-USER -o pn+ -m comment --comment portnet -j ACCEPT')).toBe(true);
    expect(isPortnetRule('-A DOCKER-USER -o pn+ -m comment --comment "portnet" -j ACCEPT')).toBe(true);
    expect(isPortnetRule('-A DOCKER-USER -i tbo1 -m comment --comment portnet-testbed -j ACCEPT')).toBe(false);
    expect(isPortnetRule('-A DOCKER-USER -j RETURN')).toBe(false);
  });

  it('turns a listed rule back into arguments', () => {
    expect(ruleArgs('-A DOCKER-USER -i pn+ -m comment --comment "a \\"b\\" c" -j ACCEPT')).toEqual([
      '-i',
      'pn+',
      '-m',
      'comment',
      '--comment',
      'a "b" c',
      '-j',
      'ACCEPT',
    ]);
  });
});

function isTagged(rule: string): boolean {
  return isPortnetRule(`-A DOCKER-USER ${rule}`);
}
