import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IprouteLinks } from '../../../src/dataplane/iprouteLinks.js';
import { endpointLinkNames } from '../../../src/dataplane/links.js';

/**
 * The real link adapter on the real host, with a namespace standing in for the container (Docker's
 * part: move the peer in, name it eth0, set the /32 address and the 169.254.1.1 routes). The only
 * packets sent go between that namespace and an address this test adds to the host.
 */
const NS = 'pnlinks-c1';
const HOST_DUMMY = 'tblinks0';
const HOST_ADDR = '198.51.100.250';
const ADDR = '198.18.250.7';
const POOL = '198.18.250.0/24';
const EP = 'c0ffee'.padEnd(64, '0');
const { hostIf, peerIf } = endpointLinkNames(EP);
const links = new IprouteLinks();

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });
const quiet = (...args: string[]) => {
  try {
    execFileSync('ip', args, { stdio: 'ignore' });
  } catch {
    /* absent */
  }
};

function quietNft(...args: string[]) {
  try {
    execFileSync('nft', args, { stdio: 'ignore' });
  } catch {
    /* absent */
  }
}

function cleanup() {
  quiet('netns', 'del', NS);
  quiet('link', 'del', hostIf);
  quiet('link', 'del', HOST_DUMMY);
  quiet('route', 'del', 'unreachable', POOL, 'metric', '3999', 'proto', '91');
}

beforeAll(() => {
  cleanup();
  // A portnet table left by an earlier run would (rightly) drop traffic from this unknown pn* veth.
  quietNft('delete', 'table', 'inet', 'portnet');
  if (!ip('route', 'show', 'type', 'unreachable').includes('198.18.0.0/15')) {
    ip('route', 'add', 'unreachable', '198.18.0.0/15', 'metric', '4000');
  }
  // The kernel here has no dummy driver; a veth end that is up holds a local address just as well.
  ip('link', 'add', HOST_DUMMY, 'type', 'veth', 'peer', 'name', `${HOST_DUMMY}p`);
  ip('addr', 'add', `${HOST_ADDR}/32`, 'dev', HOST_DUMMY);
  ip('link', 'set', HOST_DUMMY, 'up');
  ip('netns', 'add', NS);
});
afterAll(cleanup);

describe('IprouteLinks on the real kernel', () => {
  it('creates the veth pair with the host-side sysctls and the /32 route', async () => {
    await links.createEndpointLink({ hostIf, peerIf, address: ADDR, mtu: 1400 });
    expect(ip('-o', 'link', 'show', hostIf)).toMatch(/mtu 1400 .*state (UP|LOWERLAYERDOWN)/);
    expect(ip('-o', 'link', 'show', peerIf)).toMatch(/mtu 1400/);
    for (const [file, value] of [
      [`/proc/sys/net/ipv4/conf/${hostIf}/proxy_arp`, '1'],
      [`/proc/sys/net/ipv4/neigh/${hostIf}/proxy_delay`, '0'],
      [`/proc/sys/net/ipv4/conf/${hostIf}/route_localnet`, '1'],
    ] as const) {
      expect(readFileSync(file, 'utf8').trim(), file).toBe(value);
    }
    expect(await links.listRoutes()).toContainEqual(expect.stringMatching(new RegExp(`^${ADDR.replaceAll('.', '\\.')} dev ${hostIf} scope link`)));
    expect(await links.listEndpointLinks()).toContain(hostIf);
  });

  it('carries traffic between the container side and the host through the 169.254.1.1 gateway', () => {
    // What Docker does with the answer to Join.
    ip('link', 'set', peerIf, 'netns', NS);
    ip('-n', NS, 'link', 'set', peerIf, 'name', 'eth0');
    ip('-n', NS, 'addr', 'add', `${ADDR}/32`, 'dev', 'eth0');
    ip('-n', NS, 'link', 'set', 'eth0', 'up');
    ip('-n', NS, 'link', 'set', 'lo', 'up');
    ip('-n', NS, 'route', 'add', '169.254.1.1/32', 'dev', 'eth0', 'scope', 'link');
    ip('-n', NS, 'route', 'add', `${HOST_ADDR}/32`, 'via', '169.254.1.1', 'dev', 'eth0');
    const out = execFileSync('ip', ['netns', 'exec', NS, 'busybox', 'ping', '-c', '2', '-W', '2', HOST_ADDR], { encoding: 'utf8' });
    expect(out).toMatch(/2 packets received/);
  });

  it('refuses a name that exists and leaves the first link alone', async () => {
    await expect(links.createEndpointLink({ hostIf, peerIf: 'pcdup0000000', address: ADDR, mtu: 1500 })).rejects.toThrow(/File exists/);
    expect(ip('-o', 'link', 'show', hostIf)).toContain(hostIf);
  });

  it('deletes the pair and its route, and deleting again is fine', async () => {
    await links.deleteEndpointLink(hostIf);
    await links.deleteEndpointLink(hostIf);
    expect(await links.listEndpointLinks()).not.toContain(hostIf);
    expect((await links.listRoutes()).join('\n')).not.toContain(ADDR);
    expect(ip('-n', NS, '-o', 'link')).not.toContain('eth0');
  });

  it('adds and removes the unreachable pool route idempotently', async () => {
    await links.addPoolRoute(POOL);
    await links.addPoolRoute(POOL);
    expect((await links.listRoutes()).filter((r) => r.includes(POOL))).toEqual([`unreachable ${POOL} metric 3999`]);
    await links.removePoolRoute(POOL);
    await links.removePoolRoute(POOL);
    expect((await links.listRoutes()).join('\n')).not.toContain(POOL);
  });
});
