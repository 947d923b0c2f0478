// portnet doctor's IPv6 checks, on a plugin with a dual-stack network (facts as `ip -j -6 route` gives them).
import { describe, expect, it } from 'vitest';
import { diagnose, readIpv6, type Finding, type Ipv6Facts, type PluginFacts } from '../../../src/cli/doctor.js';
import type { KernelFacts } from '../../../src/cli/kernel.js';
import { call, ep, plugin, views } from './support.js';

const NET = '6a'.repeat(32);

async function dualStack() {
  const p = await plugin();
  await call(p, '/IpamDriver.RequestPool', { AddressSpace: 'portnet-local', Pool: '198.18.6.0/24', SubPool: '', Options: {}, V6: false });
  await call(p, '/IpamDriver.RequestPool', { AddressSpace: 'portnet-local', Pool: '2001:db8:6::/64', SubPool: '', Options: {}, V6: true });
  await call(p, '/NetworkDriver.CreateNetwork', {
    NetworkID: NET,
    Options: { 'com.docker.network.enable_ipv6': true, 'com.docker.network.generic': {} },
    IPv4Data: [{ AddressSpace: 'portnet-local', Pool: '198.18.6.0/24', Gateway: '169.254.1.1/32' }],
    IPv6Data: [{ AddressSpace: 'portnet-local', Pool: '2001:db8:6::/64', Gateway: 'fe80::1/64' }],
  });
  await call(p, '/NetworkDriver.CreateEndpoint', {
    NetworkID: NET,
    EndpointID: ep(1),
    Interface: { Address: '198.18.6.1/32', AddressIPv6: '2001:db8:6::1/128', MacAddress: '' },
    Options: {},
  });
  await call(p, '/NetworkDriver.Join', { NetworkID: NET, EndpointID: ep(1), SandboxKey: '/var/run/docker/netns/test', Options: {} });
  const { state, firewall } = await views(p);
  const hostIf = state.endpoints[0]!.hostIf;
  const plugin6: PluginFacts = { socket: '/run/docker/plugins/portnet.sock', state, firewall };
  // Only what the IPv6 checks read; the IPv4 checks are covered by doctor.test.ts.
  const kernel = { nft: {}, iptables: { jumps: 0, chainExists: false, dockerUser: [] }, gatewayRoute: {}, routes: [], links: [], sysctls: {} } as KernelFacts;
  const v6: Ipv6Facts = {
    forwarding: '1',
    routes: [
      { type: 'unreachable', dst: '2001:db8:6::/64', dev: 'lo', metric: 3999 },
      { type: 'unicast', dst: '2001:db8:6::1', dev: hostIf, metric: 1024 },
      { type: 'local', dst: '::1', dev: hostIf, metric: 1024 },
    ],
  };
  return { plugin: plugin6, kernel, v6, hostIf };
}

const v6Findings = (findings: Finding[]) => findings.filter((f) => ['ip6-forward', 'ipv6-routes', 'ipv6'].includes(f.check) || f.message.includes('2001:db8') || f.message.includes('::1'));

describe('portnet doctor, IPv6', () => {
  it('says forwarding and the IPv6 routes are in place', async () => {
    const { plugin, kernel, v6 } = await dualStack();
    const found = v6Findings(diagnose(plugin, kernel, v6));
    expect(found.map((f) => [f.check, f.status])).toEqual([
      ['ip6-forward', 'ok'],
      ['ipv6-routes', 'ok'],
    ]);
    expect(found[1]!.message).toBe('IPv6: 1 pool with unreachable routes, 1 endpoint with /128 and local ::1 routes');
  });

  it("warns that the host routes IPv6 between all its interfaces while ip6tables' FORWARD policy is ACCEPT", async () => {
    const { plugin, kernel, v6 } = await dualStack();
    const open = diagnose(plugin, kernel, { ...v6, forwardPolicy6: 'ACCEPT' }).find((f) => f.check === 'ip6-transit');
    expect(open?.status).toBe('warn');
    expect(open?.message).toContain('routes IPv6 between all its interfaces');
    expect(diagnose(plugin, kernel, { ...v6, forwardPolicy6: 'DROP' }).some((f) => f.check === 'ip6-transit')).toBe(false);
    // No ip6tables to read: nothing claimed either way.
    expect(diagnose(plugin, kernel, v6).some((f) => f.check === 'ip6-transit')).toBe(false);
  });

  it('finds IPv6 forwarding off, with the command and the accept_ra caveat', async () => {
    const { plugin, kernel, v6 } = await dualStack();
    const f = v6Findings(diagnose(plugin, kernel, { ...v6, forwarding: '0' })).find((x) => x.check === 'ip6-forward')!;
    expect(f.status).toBe('problem');
    expect(f.message).toContain('net.ipv6.conf.all.forwarding = 0');
    expect(f.fix).toContain('accept_ra=2');
    expect(f.commands).toEqual([['sysctl', '-w', 'net.ipv6.conf.all.forwarding=1']]);
  });

  it('finds a missing pool route, /128 route and local ::1 route, and leftovers, each with its command', async () => {
    const { plugin, kernel, v6, hostIf } = await dualStack();
    const broken: Ipv6Facts = {
      forwarding: '1',
      routes: [
        { type: 'unreachable', dst: '2001:db8:99::/64', dev: 'lo', metric: 3999 },
        { type: 'unicast', dst: '2001:db8:6::77', dev: hostIf, metric: 1024 },
      ],
    };
    const problems = diagnose(plugin, kernel, broken).filter((f) => f.status === 'problem' && f.commands?.some((c) => c.includes('-6')));
    expect(problems.map((f) => f.commands)).toEqual([
      [['ip', '-6', 'route', 'replace', 'unreachable', '2001:db8:6::/64', 'metric', '3999', 'proto', '91']],
      [['ip', '-6', 'route', 'del', 'unreachable', '2001:db8:99::/64', 'metric', '3999', 'proto', '91']],
      [['ip', '-6', 'route', 'replace', '2001:db8:6::1/128', 'dev', hostIf, 'proto', '91']],
      [['ip', '-6', 'route', 'replace', 'local', '::1', 'dev', hostIf, 'table', 'local', 'proto', '91']],
      [['ip', '-6', 'route', 'del', '2001:db8:6::77/128', 'dev', hostIf, 'proto', '91']],
    ]);
    expect(v6Findings(diagnose(plugin, kernel, v6)).every((f) => f.status === 'ok')).toBe(true);
  });

  it('says nothing about IPv6 on an IPv4-only host, and only warns when IPv6 routes cannot be read', async () => {
    const { plugin, kernel } = await dualStack();
    const v4only: PluginFacts = { ...plugin, firewall: { ...plugin.firewall!, model: { networks: plugin.firewall!.model.networks.map((n) => ({ ...n, pools6: [] })), endpoints: plugin.firewall!.model.endpoints.map(({ address6: _, ...e }) => e) } } };
    expect(v6Findings(diagnose(v4only, kernel, { routes: [], error: 'RTNETLINK answers: Address family not supported by protocol' }))).toEqual([]);
    const warned = v6Findings(diagnose(plugin, kernel, { routes: [], error: 'RTNETLINK answers: Address family not supported by protocol' }));
    expect(warned.map((f) => [f.check, f.status])).toEqual([['ipv6', 'warn']]);
  });

  it('reads the routes from `ip -j -6` and forwarding from the sysctl directory', async () => {
    const runs: string[][] = [];
    const run = async (program: string, args: string[]) => {
      runs.push([program, ...args]);
      if (program === 'ip6tables') return '-P FORWARD ACCEPT\n-A FORWARD -j DOCKER-USER\n';
      return args.includes('local')
        ? '[{"type":"local","dst":"::1","dev":"pn0123456789a","table":"local","protocol":"91","metric":1024,"flags":[],"pref":"medium"}]'
        : '[{"type":"unreachable","dst":"2001:db8:6::/64","dev":"lo","protocol":"91","metric":3999,"flags":[],"pref":"medium"},{"dst":"2001:db8:6::1","dev":"pn0123456789a","protocol":"91","metric":1024,"flags":[],"pref":"medium"}]';
    };
    const facts = await readIpv6(run, '/nonexistent-sysctl-dir');
    expect(facts).toEqual({
      routes: [
        { type: 'unreachable', dst: '2001:db8:6::/64', dev: 'lo', metric: 3999 },
        { type: 'unicast', dst: '2001:db8:6::1', dev: 'pn0123456789a', metric: 1024 },
        { type: 'local', dst: '::1', dev: 'pn0123456789a', metric: 1024 },
      ],
      forwardPolicy6: 'ACCEPT',
    });
    expect(runs).toEqual([
      ['ip', '-j', '-6', 'route', 'show', 'proto', '91'],
      ['ip', '-j', '-6', 'route', 'show', 'table', 'local', 'proto', '91'],
      ['ip6tables', '-w', '5', '-S', 'FORWARD'],
    ]);
  });
});
