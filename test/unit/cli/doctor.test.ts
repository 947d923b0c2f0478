import { describe, expect, it } from 'vitest';
import { diagnose, renderReport, report, shellQuote, type Finding, type PluginFacts } from '../../../src/cli/doctor.js';
import { parseIptables, type KernelFacts } from '../../../src/cli/kernel.js';
import { expectedChains, expectedElements, type LiveTable } from '../../../src/cli/nftJson.js';
import { ensureDockerUserRules } from '../../../src/dataplane/dockerUser.js';
import { FakeIptables } from '../dataplane/fakeIptables.js';
import { ep, populated, views } from './support.js';

/** The kernel as portnet leaves it for `state`: everything in place. */
async function healthy() {
  const { p, addresses } = await populated();
  const { state, firewall } = await views(p);
  const iptables = new FakeIptables();
  iptables.dockerdStarts();
  await ensureDockerUserRules({ run: iptables.run });
  const expected = expectedElements(firewall.model);
  const table: LiveTable = {
    name: 'portnet',
    sets: new Map([...expected].map(([name, elements]) => [name, { name, kind: name.startsWith('dnat_') ? ('map' as const) : ('set' as const), elements: [...elements] }])),
    chains: new Map([...expectedChains(firewall.model)].map(([name, n]) => [name, { name, rules: Array.from({ length: n }, (_, i) => ({ chain: name, text: `rule ${i}`, uses: [] })) }])),
  };
  const kernel: KernelFacts = {
    nft: { version: 'nftables v1.0.6 (Lester Gooch #5)' },
    table,
    ipForward: '1',
    iptables: parseIptables(iptables.listing()),
    gatewayRoute: { dev: 'eth0' },
    routes: [
      ...state.networks.flatMap((n) => n.pools.map((dst) => ({ type: 'unreachable', dst, metric: 3999 }))),
      ...state.endpoints.map((e) => ({ type: 'unicast', dst: e.address, dev: e.hostIf })),
    ],
    links: state.endpoints.map((e) => ({ name: e.hostIf, up: true })),
    sysctls: Object.fromEntries(state.endpoints.map((e) => [e.hostIf, { proxyArp: '1', forwarding: '1' }])),
  };
  // As if portnet had reached Docker for names (this plugin has no Docker client).
  state.docker = { reachable: true, where: 'unix:///var/run/docker.sock' };
  const plugin: PluginFacts = { socket: '/run/docker/plugins/portnet.sock', state, firewall };
  return { plugin, kernel, iptables, state, addresses };
}

const problems = (findings: Finding[]) => findings.filter((f) => f.status === 'problem');
const only = (findings: Finding[], check: string) => {
  const found = problems(findings);
  expect(found.map((f) => f.check), JSON.stringify(found, null, 1)).toEqual([check]);
  return found[0]!;
};

describe('portnet doctor', () => {
  it('is clean on a healthy host and says what it checked', async () => {
    const { plugin, kernel } = await healthy();
    const findings = diagnose(plugin, kernel);
    expect(findings.filter((f) => f.status !== 'ok')).toEqual([]);
    expect(findings.map((f) => f.check)).toEqual(
      expect.arrayContaining(['plugin', 'nft-table', 'nft-sets', 'ip-forward', 'docker-user', 'gateway-route', 'pool-routes', 'endpoint-links']),
    );
    const r = report(plugin.socket, findings);
    expect(r.ok).toBe(true);
    expect(renderReport(r)).toMatch(/^ok\s+plugin\s+portnet answers on \/run\/docker\/plugins\/portnet.sock: 2 networks, 3 endpoints$/m);
    expect(renderReport(r).trimEnd().split('\n').at(-1)).toBe('no problems');
  });

  it('finds a missing DOCKER-USER accept under a DROP policy, and its commands put it back', async () => {
    const { plugin, kernel, iptables } = await healthy();
    await iptables.run('iptables', ['-D', 'DOCKER-USER', '-o', 'pn+', '-m', 'comment', '--comment', 'portnet', '-j', 'ACCEPT']);
    kernel.iptables = parseIptables(iptables.listing());
    const f = only(diagnose(plugin, kernel), 'docker-user');
    expect(f.message).toContain('FORWARD policy DROP: 1 portnet rule missing from DOCKER-USER (-o pn+ -m comment --comment portnet -j ACCEPT)');
    expect(f.fix).toMatch(/restart portnet/);
    for (const c of f.commands!) {
      expect(c[0]).toBe('iptables');
      await iptables.run('iptables', c.slice(1));
    }
    kernel.iptables = parseIptables(iptables.listing());
    expect(problems(diagnose(plugin, kernel))).toEqual([]);
    expect(renderReport(report(plugin.socket, [f]))).toContain('iptables -w 5 -I DOCKER-USER 1 -o pn+ -m comment --comment portnet -j ACCEPT');
  });

  it('finds a missing FORWARD jump and rules below a RETURN; only warns under an ACCEPT policy', async () => {
    const { plugin, kernel, iptables } = await healthy();
    await iptables.run('iptables', ['-D', 'FORWARD', '-j', 'DOCKER-USER']);
    kernel.iptables = parseIptables(iptables.listing());
    const f = only(diagnose(plugin, kernel), 'docker-user');
    expect(f.message).toContain('FORWARD has no jump to DOCKER-USER');
    expect(f.commands).toEqual([['iptables', '-w', '5', '-I', 'FORWARD', '-j', 'DOCKER-USER']]);

    await iptables.run('iptables', ['-I', 'FORWARD', '-j', 'DOCKER-USER']);
    await iptables.run('iptables', ['-I', 'DOCKER-USER', '1', '-j', 'RETURN']);
    kernel.iptables = parseIptables(iptables.listing());
    expect(only(diagnose(plugin, kernel), 'docker-user').message).toContain('an unconditional RETURN in DOCKER-USER comes before portnet\'s rules');

    kernel.iptables = parseIptables('-P FORWARD ACCEPT\n');
    const findings = diagnose(plugin, kernel);
    expect(problems(findings)).toEqual([]);
    expect(findings.find((x) => x.check === 'docker-user')?.status).toBe('warn');
  });

  it('finds forwarding off', async () => {
    const { plugin, kernel } = await healthy();
    kernel.ipForward = '0';
    const f = only(diagnose(plugin, kernel), 'ip-forward');
    expect(f.commands).toEqual([['sysctl', '-w', 'net.ipv4.ip_forward=1']]);
  });

  it('finds a host that cannot route to 169.254.1.1 through another interface', async () => {
    const { plugin, kernel } = await healthy();
    kernel.gatewayRoute = { error: 'RTNETLINK answers: Network is unreachable' };
    const f = only(diagnose(plugin, kernel), 'gateway-route');
    expect(f.message).toContain('proxy ARP');
    expect(f.commands).toContainEqual(['ip', 'route', 'add', '169.254.1.1/32', 'dev', 'portnet0']);
    kernel.gatewayRoute = { dev: 'pn01e001e001e' };
    expect(only(diagnose(plugin, kernel), 'gateway-route').commands![0]).toEqual(['ip', 'route', 'del', '169.254.1.1', 'dev', 'pn01e001e001e']);
    kernel.gatewayRoute = { dev: 'lo', type: 'blackhole' };
    expect(only(diagnose(plugin, kernel), 'gateway-route').message).toContain('of type blackhole');
  });

  it('finds a missing unreachable route and an orphan one, with the commands that fix them', async () => {
    const { plugin, kernel } = await healthy();
    kernel.routes = kernel.routes.filter((r) => r.dst !== '198.18.2.0/24');
    const f = only(diagnose(plugin, kernel), 'pool-routes');
    expect(f.message).toMatch(/^pool 198\.18\.2\.0\/24 of network cdcdcdcdcdcd has no unreachable route/);
    expect(f.commands).toEqual([['ip', 'route', 'replace', 'unreachable', '198.18.2.0/24', 'metric', '3999', 'proto', '91']]);
    kernel.routes.push({ type: 'unreachable', dst: '198.18.2.0/24', metric: 3999 }, { type: 'unreachable', dst: '198.18.9.0/24', metric: 3999 });
    const orphan = only(diagnose(plugin, kernel), 'pool-routes');
    expect(orphan.message).toContain('unreachable route 198.18.9.0/24');
    expect(orphan.commands).toEqual([['ip', 'route', 'del', 'unreachable', '198.18.9.0/24', 'metric', '3999', 'proto', '91']]);
  });

  it('finds endpoint drift: a lost link, a link down, proxy ARP off, a lost /32 route, orphan links and routes', async () => {
    const { plugin, kernel, state, addresses } = await healthy();
    const [e1, e2, e3] = [ep(1), ep(2), ep(3)].map((id) => state.endpoints.find((e) => e.id === id)!);
    kernel.links = kernel.links.filter((l) => l.name !== e1!.hostIf);
    kernel.routes = kernel.routes.filter((r) => r.dev !== e1!.hostIf && r.dev !== e3!.hostIf);
    kernel.links.find((l) => l.name === e2!.hostIf)!.up = false;
    kernel.sysctls[e2!.hostIf] = { proxyArp: '0', forwarding: '1' };
    kernel.links.push({ name: 'pn0123456789a', up: true });
    kernel.routes.push({ type: 'unicast', dst: '198.18.1.99', dev: 'eth0' });
    const found = problems(diagnose(plugin, kernel));
    expect(found.map((f) => f.message)).toEqual([
      expect.stringMatching(new RegExp(`^endpoint ${ep(1).slice(0, 12)} \\(${addresses[0]} on abababababab\\): its link ${e1!.hostIf} is missing`)),
      expect.stringContaining(`link ${e2!.hostIf} is down`),
      expect.stringContaining(`net.ipv4.conf.${e2!.hostIf}.proxy_arp = 0, so the container's ARP for its gateway goes unanswered`),
      expect.stringContaining(`the /32 route to ${addresses[2]} via ${e3!.hostIf} is missing`),
      expect.stringContaining('link pn0123456789a is named like a portnet endpoint'),
      expect.stringContaining('route 198.18.1.99 dev eth0 (route protocol 91) matches no endpoint'),
    ]);
    expect(found.flatMap((f) => f.commands ?? [])).toEqual([
      ['ip', 'link', 'set', e2!.hostIf, 'up'],
      ['sysctl', '-w', `net.ipv4.conf.${e2!.hostIf}.proxy_arp=1`],
      ['ip', 'route', 'replace', `${addresses[2]}/32`, 'dev', e3!.hostIf, 'proto', '91', 'scope', 'link'],
      ['ip', 'link', 'del', 'pn0123456789a'],
      ['ip', 'route', 'del', '198.18.1.99', 'dev', 'eth0', 'proto', '91'],
    ]);
  });

  it('finds set elements missing from the kernel or not in the state, and a chain with a rule too few', async () => {
    const { plugin, kernel, addresses } = await healthy();
    const sets = kernel.table!.sets;
    sets.get('dnat_any')!.elements = sets.get('dnat_any')!.elements.filter((e) => !e.startsWith('tcp . 8080 '));
    sets.get('exposed_direct')!.elements.push('198.18.1.77 . tcp . 22');
    kernel.table!.chains.get('forward')!.rules.pop();
    const found = problems(diagnose(plugin, kernel));
    expect(found.map((f) => f.message)).toEqual([
      `set exposed_direct: 1 not in portnet's state (198.18.1.77 . tcp . 22)`,
      `map dnat_any: 1 element missing (tcp . 8080 : ${addresses[0]} . 80)`,
      expect.stringMatching(/^chain forward has \d+ rules?; portnet's ruleset has \d+$/),
    ]);
    expect(found.every((f) => f.fix?.startsWith('restart portnet'))).toBe(true);
  });

  it('finds the table missing, and nft missing', async () => {
    const { plugin, kernel } = await healthy();
    delete kernel.table;
    kernel.tableError = 'absent';
    expect(only(diagnose(plugin, kernel), 'nft-table').message).toMatch(/^table inet portnet is missing/);
    kernel.nft = { error: 'nft is not installed (spawn nft ENOENT)' };
    expect(only(diagnose(plugin, kernel), 'nft').fix).toContain('apt-get install nftables');
  });

  it('without the plugin it still checks the host, and says the comparison was skipped', async () => {
    const { kernel } = await healthy();
    kernel.ipForward = '0';
    const findings = diagnose({ socket: '/run/x.sock', error: 'cannot reach portnet on /run/x.sock: is portnet running?' }, kernel);
    expect(problems(findings).map((f) => f.check)).toEqual(['plugin', 'ip-forward']);
    expect(findings[0]!.message).toContain('checks that compare its state with the kernel are skipped');
    expect(findings.some((f) => f.check.startsWith('endpoint') || f.check === 'pool-routes' || f.check === 'nft-sets')).toBe(false);
  });

  it('expects no table and no DOCKER-USER accepts from a portnet stopped with no network left', async () => {
    const { kernel } = await healthy();
    delete kernel.table;
    kernel.tableError = 'absent';
    kernel.iptables = parseIptables('-P FORWARD DROP\n-N DOCKER-USER\n-A FORWARD -j DOCKER-USER\n-A DOCKER-USER -j RETURN\n');
    const findings = diagnose({ socket: '/run/x.sock', error: 'cannot reach portnet' }, kernel);
    expect(problems(findings).map((f) => f.check)).toEqual(['plugin']);
    expect(findings.find((f) => f.check === 'docker-user')).toMatchObject({ status: 'warn', message: expect.stringContaining('expected while portnet is stopped') });
    // With its table still there (stopped while networks exist), the accepts must be there too.
    kernel.table = { name: 'portnet', sets: new Map(), chains: new Map() };
    expect(problems(diagnose({ socket: '/run/x.sock', error: 'cannot reach portnet' }, kernel)).map((f) => f.check)).toEqual(['plugin', 'docker-user']);
  });

  it('warns when portnet cannot reach Docker for names', async () => {
    const { plugin, kernel } = await healthy();
    plugin.state!.docker = { reachable: false, where: 'unix:///var/run/docker.sock', error: 'connect ENOENT' };
    const findings = diagnose(plugin, kernel);
    expect(problems(findings)).toEqual([]);
    expect(findings.find((f) => f.check === 'docker')).toMatchObject({ status: 'warn', message: expect.stringContaining('container names show as "?"') });
    expect(report('s', findings)).toMatchObject({ ok: true, warnings: 1 });
  });

  it('quotes commands for copying', () => {
    expect(shellQuote(['ip', 'route', 'add', '169.254.1.1/32'])).toBe('ip route add 169.254.1.1/32');
    expect(shellQuote(['echo', "it's a b"])).toBe("echo 'it'\\''s a b'");
  });
});
