import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IprouteLinks } from '../../../src/dataplane/iprouteLinks.js';
import { endpointLinkNames, parsePortnetRoute } from '../../../src/dataplane/links.js';

/**
 * IPv6 endpoints on the real kernel. A namespace stands in for the container and is set up the way
 * Docker 20.10 sets one up (observed: all/default disable_ipv6=1 in the container; the interface
 * with an IPv6 address gets disable_ipv6=0, the address /128 nodad, the connected fe80::1/128 route
 * and the default route via fe80::1). The only packets sent go between that namespace and an
 * address of 2001:db8::/32 this test adds to the host.
 */
const NS = 'pnlinks6-c1';
const SANDBOX = `/var/run/netns/${NS}`;
const HOST_DUMMY = 'tblinks6';
const HOST_ADDR6 = '2001:db8:ff::250';
const ADDR = '198.18.252.7';
const ADDR6 = '2001:db8:252::7';
const POOL6 = '2001:db8:252::/64';
const EP = 'feed06'.padEnd(64, '0');
const EP4 = 'feed04'.padEnd(64, '0');
const { hostIf, peerIf } = endpointLinkNames(EP);
const v4only = endpointLinkNames(EP4);
const second = endpointLinkNames('feed07'.padEnd(64, '0'));
const links = new IprouteLinks();
const spec = { hostIf, peerIf, address: ADDR, address6: ADDR6, mtu: 1400 };

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });
const quiet = (...args: string[]) => {
  try {
    execFileSync('ip', args, { stdio: 'ignore' });
  } catch {
    /* absent */
  }
};
const sysctl = (path: string) => readFileSync(`/proc/sys/net/${path}`, 'utf8').trim();
const inNs = (...args: string[]) => execFileSync('ip', ['netns', 'exec', NS, ...args], { encoding: 'utf8' });

function cleanup() {
  quiet('netns', 'del', NS);
  quiet('link', 'del', hostIf);
  quiet('link', 'del', v4only.hostIf);
  quiet('link', 'del', second.hostIf);
  quiet('link', 'del', HOST_DUMMY);
  quiet('-6', 'route', 'del', 'unreachable', POOL6, 'metric', '3999', 'proto', '91');
}

/** Docker's part after Join, as observed on Docker 20.10 (see the file comment). */
function dockerConfiguresEth0() {
  ip('link', 'set', peerIf, 'netns', NS);
  ip('-n', NS, 'link', 'set', peerIf, 'name', 'eth0');
  inNs('sysctl', '-q', '-w', 'net.ipv6.conf.eth0.disable_ipv6=0');
  ip('-n', NS, 'addr', 'add', `${ADDR}/32`, 'dev', 'eth0');
  ip('-n', NS, 'addr', 'add', `${ADDR6}/128`, 'dev', 'eth0', 'nodad');
  ip('-n', NS, 'link', 'set', 'eth0', 'up');
  ip('-n', NS, 'route', 'add', '169.254.1.1/32', 'dev', 'eth0', 'scope', 'link');
  ip('-n', NS, 'route', 'add', 'fe80::1/128', 'dev', 'eth0');
  ip('-n', NS, 'route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0');
  ip('-n', NS, '-6', 'route', 'add', 'default', 'via', 'fe80::1', 'dev', 'eth0');
}

beforeAll(() => {
  cleanup();
  try {
    // A portnet table left by an earlier run would (rightly) drop traffic from this unknown pn* veth.
    execFileSync('nft', ['delete', 'table', 'inet', 'portnet'], { stdio: 'ignore' });
  } catch {
    /* absent */
  }
  if (!ip('-6', 'route', 'show', 'type', 'unreachable').includes('2001:db8::/32')) ip('-6', 'route', 'add', 'unreachable', '2001:db8::/32', 'metric', '4000');
  // A veth end that is up holds a host address (the kernel here has no dummy driver).
  ip('link', 'add', HOST_DUMMY, 'type', 'veth', 'peer', 'name', `${HOST_DUMMY}p`);
  ip('link', 'set', HOST_DUMMY, 'up');
  ip('addr', 'add', `${HOST_ADDR6}/128`, 'dev', HOST_DUMMY, 'nodad');
  ip('netns', 'add', NS);
  ip('-n', NS, 'link', 'set', 'lo', 'up');
  // Docker turns IPv6 off for the whole container and on again per interface that has an address.
  inNs('sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
});
afterAll(cleanup);

describe('IprouteLinks with IPv6 on the real kernel', () => {
  it('gives an IPv6 endpoint fe80::1 (and no other address), its /128 route and the local ::1 route, all read back', async () => {
    await links.createEndpointLink(spec);
    expect(sysctl(`ipv6/conf/${hostIf}/disable_ipv6`)).toBe('0');
    expect(sysctl(`ipv6/conf/${hostIf}/accept_ra`)).toBe('0');
    expect(sysctl(`ipv6/conf/${hostIf}/addr_gen_mode`)).toBe('1');
    expect(sysctl(`ipv4/conf/${hostIf}/proxy_arp`)).toBe('1');
    const addrs = ip('-6', '-o', 'addr', 'show', 'dev', hostIf);
    expect(addrs.match(/inet6 \S+/g)).toEqual(['inet6 fe80::1/64']);
    const routes = (await links.listRoutes()).map(parsePortnetRoute);
    expect(routes).toContainEqual(expect.objectContaining({ kind: 'endpoint', address: ADDR, dev: hostIf }));
    expect(routes).toContainEqual(expect.objectContaining({ kind: 'endpoint', address: ADDR6, dev: hostIf }));
    expect(routes).toContainEqual(expect.objectContaining({ kind: 'loopback', dev: hostIf }));
    expect(routes.filter((r) => r.kind === 'other' && r.text.includes(hostIf))).toEqual([]);
  });

  it('keeps a local ::1 route on every IPv6 veth: a second endpoint, and a repair, take none away', async () => {
    const other = { ...second, address: '198.18.252.8', address6: '2001:db8:252::8', mtu: 1400 };
    const loopbackDevs = () =>
      ip('-6', 'route', 'show', 'table', 'local', 'proto', '91')
        .split('\n')
        .map((l) => /^local ::1 dev (\S+)/.exec(l.trim())?.[1])
        .filter((d): d is string => d !== undefined)
        .sort();
    await links.createEndpointLink(other);
    try {
      expect(loopbackDevs()).toEqual([hostIf, second.hostIf].sort());
      // Strict lookup on each incoming interface finds its own route (what a reply un-NATed to ::1 needs).
      for (const dev of [hostIf, second.hostIf]) expect(ip('-6', 'route', 'get', '::1', 'iif', dev)).toMatch(/^local ::1/);
      await links.repairEndpointLink(spec);
      await links.repairEndpointLink(other);
      expect(loopbackDevs()).toEqual([hostIf, second.hostIf].sort());
    } finally {
      await links.deleteEndpointLink(second.hostIf);
    }
    expect(loopbackDevs()).toEqual([hostIf]);
  });

  it('carries IPv6 between the container side and the host through the fe80::1 gateway', () => {
    dockerConfiguresEth0();
    const out = inNs('busybox', 'ping', '-c', '2', '-W', '2', HOST_ADDR6);
    expect(out).toMatch(/2 packets received/);
  });

  it('puts back the /128 and local ::1 routes and the address after they were removed, and removes a /128 route', async () => {
    ip('-6', 'route', 'del', `${ADDR6}/128`, 'dev', hostIf);
    ip('-6', 'route', 'del', 'local', '::1', 'dev', hostIf, 'table', 'local');
    ip('-6', 'addr', 'del', 'fe80::1/64', 'dev', hostIf);
    expect((await links.listRoutes()).map(parsePortnetRoute).filter((r) => 'dev' in r && r.dev === hostIf)).toEqual([
      expect.objectContaining({ kind: 'endpoint', address: ADDR }),
    ]);
    await links.repairEndpointLink(spec);
    const kinds = (await links.listRoutes()).map(parsePortnetRoute).filter((r) => 'dev' in r && r.dev === hostIf).map((r) => r.kind).sort();
    expect(kinds).toEqual(['endpoint', 'endpoint', 'loopback']);
    expect(inNs('busybox', 'ping', '-c', '1', '-W', '2', HOST_ADDR6)).toMatch(/1 packets received/);
    await links.removeEndpointRoute(ADDR6, hostIf);
    await links.removeEndpointRoute(ADDR6, hostIf); // absent is fine
    expect((await links.listRoutes()).join('\n')).not.toContain(ADDR6);
  });

  it('re-creates a destroyed IPv6 veth inside the container, IPv6 switched on there, and traffic flows again', async () => {
    ip('link', 'del', hostIf);
    expect(ip('-n', NS, '-o', 'link')).not.toContain('eth0');
    expect(await links.restoreEndpointLink(spec, { sandbox: SANDBOX, prefix: 32, gateway: '169.254.1.1', prefix6: 128, gateway6: 'fe80::1' })).toBe('eth0');
    expect(inNs('cat', '/proc/sys/net/ipv6/conf/eth0/disable_ipv6').trim()).toBe('0');
    expect(ip('-n', NS, '-o', '-6', 'addr', 'show', 'dev', 'eth0')).toContain(`inet6 ${ADDR6}/128`);
    const routes6 = ip('-n', NS, '-6', 'route');
    expect(routes6).toMatch(/^default via fe80::1 dev eth0/m);
    expect(routes6).toMatch(/^fe80::1 dev eth0/m);
    expect(inNs('busybox', 'ping', '-c', '2', '-W', '2', HOST_ADDR6)).toMatch(/2 packets received/);
  });

  it('disables IPv6 on the host side of an IPv4-only endpoint, and a repair flushes IPv6 routes found there', async () => {
    const s4 = { hostIf: v4only.hostIf, peerIf: v4only.peerIf, address: '198.18.252.8', mtu: 1500 };
    await links.createEndpointLink(s4);
    expect(sysctl(`ipv6/conf/${s4.hostIf}/disable_ipv6`)).toBe('1');
    expect(ip('-6', '-o', 'addr', 'show', 'dev', s4.hostIf)).toBe('');
    // Someone turns IPv6 on and routes through it; the repair takes that away again.
    writeFileSync(`/proc/sys/net/ipv6/conf/${s4.hostIf}/disable_ipv6`, '0');
    ip('-6', 'route', 'replace', 'local', '::1', 'dev', s4.hostIf, 'table', 'local', 'proto', '91');
    expect((await links.listRoutes()).map(parsePortnetRoute)).toContainEqual(expect.objectContaining({ kind: 'loopback', dev: s4.hostIf }));
    await links.repairEndpointLink(s4);
    expect(sysctl(`ipv6/conf/${s4.hostIf}/disable_ipv6`)).toBe('1');
    const left = (await links.listRoutes()).map(parsePortnetRoute).filter((r) => 'dev' in r && r.dev === s4.hostIf);
    expect(left).toEqual([expect.objectContaining({ kind: 'endpoint', address: s4.address })]);
    await links.deleteEndpointLink(s4.hostIf);
  });

  it('adds and removes an IPv6 unreachable pool route idempotently', async () => {
    await links.addPoolRoute(POOL6);
    await links.addPoolRoute(POOL6);
    const pools = (await links.listRoutes()).map(parsePortnetRoute).filter((r) => r.kind === 'pool' && r.cidr === POOL6);
    expect(pools).toHaveLength(1);
    expect(pools[0]!.text).toMatch(new RegExp(`^unreachable ${POOL6} dev lo metric 3999`));
    await links.removePoolRoute(POOL6);
    await links.removePoolRoute(POOL6);
    expect((await links.listRoutes()).join('\n')).not.toContain(POOL6);
  });

  it('a failed link creation (bad IPv6 address) leaves no veth behind', async () => {
    const bad = { hostIf: v4only.hostIf, peerIf: v4only.peerIf, address: '198.18.252.9', address6: '2001:db8:252::zz', mtu: 1500 };
    await expect(links.createEndpointLink(bad)).rejects.toThrow();
    expect(await links.listEndpointLinks()).not.toContain(v4only.hostIf);
  });
});

describe('IprouteLinks.enableIpv6Forwarding under --sysctl-net-dir', () => {
  /** A sysctl tree in a directory: what --sysctl-net-dir points at, without touching the host's. */
  function tree(values: Record<string, Record<string, string>>): string {
    const dir = mkdtempSync(join(tmpdir(), 'pnsysctl-'));
    for (const [iface, files] of Object.entries(values)) {
      mkdirSync(join(dir, 'ipv6/conf', iface), { recursive: true });
      for (const [name, value] of Object.entries(files)) writeFileSync(join(dir, 'ipv6/conf', iface, name), `${value}\n`);
    }
    return dir;
  }
  const read = (dir: string, iface: string, name: string) => readFileSync(join(dir, 'ipv6/conf', iface, name), 'utf8').trim();

  /**
   * A stand-in for `ip` that reports eth0 with an RA-learned default route and wlan1 with a SLAAC
   * address (this host has neither), so the test does not depend on the machine's uplink.
   */
  function fakeIp(dir: string): string {
    const path = join(dir, 'fake-ip');
    writeFileSync(
      path,
      [
        '#!/bin/sh',
        'case "$*" in',
        `  *"route show proto ra"*) echo '[{"dst":"default","gateway":"fe80::1","dev":"eth0","protocol":"ra"}]' ;;`,
        `  *"addr show dynamic"*) echo '[{"ifname":"wlan1","addr_info":[{"local":"2001:db8:5::5"}]},{"ifname":"eth1","addr_info":[]}]' ;;`,
        '  *) exit 1 ;;',
        'esac',
      ].join('\n') + '\n',
      { mode: 0o755 },
    );
    return path;
  }

  it('moves accept_ra 1 → 2 only where router advertisements are in use, then sets all.forwarding', async () => {
    const dir = tree({
      all: { forwarding: '0', accept_ra: '1' },
      default: { forwarding: '0', accept_ra: '1' },
      lo: { forwarding: '0', accept_ra: '1' },
      eth0: { forwarding: '0', accept_ra: '1' },
      eth1: { forwarding: '0', accept_ra: '0' },
      wlan0: { forwarding: '0', accept_ra: '2' },
      wlan1: { forwarding: '0', accept_ra: '1' },
      // A container bridge: it must keep ignoring advertisements once the host forwards.
      docker0: { forwarding: '0', accept_ra: '1' },
      pn0123456789a: { forwarding: '0', accept_ra: '1' },
    });
    try {
      const l = new IprouteLinks(fakeIp(dir), 'nsenter', dir);
      expect(await l.enableIpv6Forwarding()).toEqual({ acceptRa: ['eth0', 'wlan1'] });
      expect(read(dir, 'wlan1', 'accept_ra')).toBe('2');
      expect(read(dir, 'docker0', 'accept_ra')).toBe('1');
      expect(read(dir, 'all', 'forwarding')).toBe('1');
      expect([read(dir, 'eth0', 'accept_ra'), read(dir, 'eth1', 'accept_ra'), read(dir, 'wlan0', 'accept_ra')]).toEqual(['2', '0', '2']);
      expect([read(dir, 'all', 'accept_ra'), read(dir, 'default', 'accept_ra'), read(dir, 'lo', 'accept_ra'), read(dir, 'pn0123456789a', 'accept_ra')]).toEqual(['1', '1', '1', '1']);
      // On already: nothing is touched, nothing reported.
      writeFileSync(join(dir, 'ipv6/conf/eth1/accept_ra'), '1');
      expect(await l.enableIpv6Forwarding()).toBeUndefined();
      expect(read(dir, 'eth1', 'accept_ra')).toBe('1');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
