import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IprouteLinks } from '../../../src/dataplane/iprouteLinks.js';
import { endpointLinkNames } from '../../../src/dataplane/links.js';

/**
 * The link repairs reconciliation uses, on the real kernel: a namespace stands in for a running
 * container (set up as Docker sets up eth0 after Join), its veth is destroyed, and the adapter
 * re-creates it inside. The only packets sent go from that namespace to an address this test adds
 * to the host.
 */
const NS = 'pnrepair-c1';
const SANDBOX = `/var/run/netns/${NS}`;
const HOST_DUMMY = 'tbrepair0';
const HOST_ADDR = '198.51.100.249';
const ADDR = '198.18.251.7';
const EP = 'beef01'.padEnd(64, '0');
const { hostIf, peerIf } = endpointLinkNames(EP);
const links = new IprouteLinks();
const spec = { hostIf, peerIf, address: ADDR, mtu: 1400, mac: '02:42:c6:12:fb:07' };

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });
const quiet = (...args: string[]) => {
  try {
    execFileSync('ip', args, { stdio: 'ignore' });
  } catch {
    /* absent */
  }
};

function cleanup() {
  quiet('netns', 'del', NS);
  quiet('link', 'del', hostIf);
  quiet('link', 'del', HOST_DUMMY);
}

beforeAll(() => {
  cleanup();
  try {
    // A portnet table left by an earlier run would (rightly) drop traffic from this unknown pn* veth.
    execFileSync('nft', ['delete', 'table', 'inet', 'portnet'], { stdio: 'ignore' });
  } catch {
    /* absent */
  }
  if (!ip('route', 'show', 'type', 'unreachable').includes('198.18.0.0/15')) ip('route', 'add', 'unreachable', '198.18.0.0/15', 'metric', '4000');
  ip('link', 'add', HOST_DUMMY, 'type', 'veth', 'peer', 'name', `${HOST_DUMMY}p`);
  ip('addr', 'add', `${HOST_ADDR}/32`, 'dev', HOST_DUMMY);
  ip('link', 'set', HOST_DUMMY, 'up');
  ip('netns', 'add', NS);
  ip('-n', NS, 'link', 'set', 'lo', 'up');
});
afterAll(cleanup);

describe('IprouteLinks repairs on the real kernel', () => {
  it('puts back a /32 route and a downed host side', async () => {
    await links.createEndpointLink(spec);
    ip('route', 'del', `${ADDR}/32`, 'dev', hostIf);
    ip('link', 'set', hostIf, 'down');
    expect((await links.listRoutes()).join('\n')).not.toContain(ADDR);
    await links.repairEndpointLink(spec);
    expect(await links.listRoutes()).toContainEqual(expect.stringMatching(new RegExp(`^${ADDR.replaceAll('.', '\\.')} dev ${hostIf} scope link`)));
    expect(ip('-o', 'link', 'show', hostIf)).toMatch(/<[^>]*\bUP\b/);
    await links.removeEndpointRoute(ADDR, hostIf);
    await links.removeEndpointRoute(ADDR, hostIf); // absent is fine
    expect((await links.listRoutes()).join('\n')).not.toContain(ADDR);
    await links.deleteEndpointLink(hostIf);
  });

  it('re-creates a destroyed veth inside the running "container", configured as Docker did, and traffic flows again', async () => {
    // Docker's part after Join: the peer moves in as eth0 with the /32, the gateway route and the default.
    await links.createEndpointLink(spec);
    ip('link', 'set', peerIf, 'netns', NS);
    ip('-n', NS, 'link', 'set', peerIf, 'name', 'eth0');
    ip('-n', NS, 'addr', 'add', `${ADDR}/32`, 'dev', 'eth0');
    ip('-n', NS, 'link', 'set', 'eth0', 'up');
    ip('-n', NS, 'route', 'add', '169.254.1.1/32', 'dev', 'eth0', 'scope', 'link');
    ip('-n', NS, 'route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0');
    // Someone deletes the host side: the container loses eth0 with it.
    ip('link', 'del', hostIf);
    expect(ip('-n', NS, '-o', 'link')).not.toContain('eth0');
    expect(await links.sandboxExists(SANDBOX)).toBe(true);

    expect(await links.restoreEndpointLink(spec, { sandbox: SANDBOX, prefix: 32, gateway: '169.254.1.1' })).toBe('eth0');
    expect(ip('-n', NS, '-o', 'addr', 'show', 'dev', 'eth0')).toContain(`inet ${ADDR}/32`);
    expect(ip('-n', NS, '-o', 'link', 'show', 'eth0')).toMatch(/mtu 1400 .*link\/ether 02:42:c6:12:fb:07/s);
    const routes = ip('-n', NS, '-4', 'route');
    expect(routes).toMatch(/^default via 169\.254\.1\.1 dev eth0/m);
    expect(routes).toMatch(/^169\.254\.1\.1 dev eth0 scope link/m);
    expect(readFileSync(`/proc/sys/net/ipv4/conf/${hostIf}/proxy_arp`, 'utf8').trim()).toBe('1');
    expect(await links.listRoutes()).toContainEqual(expect.stringMatching(new RegExp(`^${ADDR.replaceAll('.', '\\.')} dev ${hostIf}`)));
    const out = execFileSync('ip', ['netns', 'exec', NS, 'busybox', 'ping', '-c', '2', '-W', '2', HOST_ADDR], { encoding: 'utf8' });
    expect(out).toMatch(/2 packets received/);
  });

  it('takes the next free eth name, and keeps a default route another interface holds', async () => {
    // The container has another network's eth0 (a veth end whose peer stays on the host) and its default.
    await links.deleteEndpointLink(hostIf);
    ip('link', 'add', 'tbrepair1', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS);
    ip('-n', NS, 'link', 'set', 'eth0', 'up');
    ip('-n', NS, 'route', 'replace', 'unreachable', 'default');
    try {
      expect(await links.restoreEndpointLink(spec, { sandbox: SANDBOX, prefix: 32, gateway: '169.254.1.1' })).toBe('eth1');
      expect(ip('-n', NS, '-4', 'route', 'show', 'default')).toMatch(/^unreachable default/);
    } finally {
      quiet('link', 'del', 'tbrepair1');
      await links.deleteEndpointLink(hostIf);
    }
  });

  it('refuses a sandbox that does not exist or is not a plain path, leaving no link behind', async () => {
    expect(await links.sandboxExists('/var/run/netns/pnrepair-none')).toBe(false);
    await expect(links.restoreEndpointLink(spec, { sandbox: '/var/run/netns/pnrepair-none', prefix: 32, gateway: '169.254.1.1' })).rejects.toThrow();
    await expect(links.restoreEndpointLink(spec, { sandbox: '/var/run/netns/../../../etc/passwd', prefix: 32, gateway: '169.254.1.1' })).rejects.toThrow(/not a plain absolute path/);
    expect(await links.listEndpointLinks()).not.toContain(hostIf);
  });
});
