import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPortnetRule } from '../../../src/dataplane/dockerUser.js';
import type { FirewallModel } from '../../../src/dataplane/model.js';
import { NftError, NftFirewall } from '../../../src/dataplane/nft/apply.js';
import { HOST, HOST_IP, HOST_IP_2, OUTSIDE_IP, World, type Where } from './world.js';
import { answered, dropped, refusedByHost, ruleCounter } from './verdicts.js';

/**
 * Real kernel, no Docker: containers, host and "the internet" are network namespaces made here (see
 * world.ts), the ruleset is what NftFirewall renders, and every check is a real TCP or UDP exchange.
 * "Blocked" means the packet was dropped (timeout), told apart from "nobody listens" (refused):
 * every container listens on every port the tests use, so a timeout is the firewall's doing.
 */

const world = new World();
const firewall = new NftFirewall({ run: world.hostRunner });

const NET_A = { id: 'a'.repeat(64), index: 1, pools: ['198.18.1.0/24'], pools6: [], icc: true, masquerade: true };
const NET_B = { id: 'b'.repeat(64), index: 2, pools: ['198.18.2.0/24'], pools6: [], icc: false, masquerade: false };

const C1 = { name: 'c1', hostIf: 'pna1000000001', address: '198.18.1.2', net: NET_A };
const C2 = { name: 'c2', hostIf: 'pna1000000002', address: '198.18.1.3', net: NET_A };
/** Misbehaves: spoofs its source and routes 127.0.0.1 to the host. */
const CX = { name: 'cx', hostIf: 'pna1000000009', address: '198.18.1.9', net: NET_A };
const C3 = { name: 'c3', hostIf: 'pnb2000000001', address: '198.18.2.2', net: NET_B };
const C4 = { name: 'c4', hostIf: 'pnb2000000002', address: '198.18.2.3', net: NET_B };
const CONTAINERS = [C1, C2, CX, C3, C4];
const SPOOFED = '198.18.1.99';

const exposure = (proto: 'tcp' | 'udp', host: number, container: number, hostIp?: string, length = 1) => ({
  proto,
  hostPort: host,
  hostPortEnd: host + length - 1,
  containerPort: container,
  containerPortEnd: container + length - 1,
  ...(hostIp ? { hostIp } : {}),
});

const MODEL: FirewallModel = {
  networks: [NET_A, NET_B],
  endpoints: CONTAINERS.map((c) => ({
    id: c.hostIf.slice(2).padEnd(64, '0'),
    networkId: c.net.id,
    hostIf: c.hostIf,
    address: c.address,
    exposures:
      c === C1
        ? [
            exposure('tcp', 8080, 80),
            exposure('tcp', 7000, 5000, undefined, 5),
            exposure('udp', 5353, 53),
            exposure('tcp', 5432, 5432, '127.0.0.1'),
            exposure('udp', 5454, 54, '127.0.0.1'),
            exposure('tcp', 9090, 90, HOST_IP),
          ]
        : c === C3
          ? [exposure('tcp', 8081, 81)]
          : [],
  })),
};

const CONTAINER_PORTS = ['tcp:22,80,81,90,5432,5000-5004', 'udp:53,54'];

beforeAll(async () => {
  await world.build();
  for (const c of CONTAINERS) await world.container(c.name, c.hostIf, c.address);
  await world.exec('cx', 'ip', ['addr', 'add', `${SPOOFED}/32`, 'dev', 'lo']);
  // cx and the outside route 127.0.0.1 to the host instead of their own loopback, to craft the
  // packets moby#45610 is about.
  for (const [where, via] of [['cx', '169.254.1.1'], ['outside', HOST_IP]] as const) {
    await world.exec(where, 'ip', ['rule', 'add', 'pref', '100', 'lookup', 'local']);
    await world.exec(where, 'ip', ['rule', 'del', 'pref', '0']);
    await world.exec(where, 'ip', ['rule', 'add', 'to', '127.0.0.1', 'lookup', '100', 'pref', '10']);
    await world.exec(where, 'ip', ['route', 'add', '127.0.0.1', 'via', via, 'dev', 'eth0', 'onlink', 'table', '100']);
  }
  await Promise.all([
    ...CONTAINERS.map((c) => world.serve(c.name, c.name, CONTAINER_PORTS)),
    world.serve('outside', 'outside', ['tcp:80']),
    world.serve('host', 'host', ['udp:55']),
  ]);
  await firewall.apply(MODEL);
}, 120_000);

afterAll(async () => {
  await world.destroy();
}, 60_000);

const probe = (from: Where, proto: 'tcp' | 'udp', to: string, port: number, localAddress?: string) =>
  world.probe(from, proto, to, port, localAddress ? { localAddress } : {});


async function hostIptables(...args: string[]): Promise<string> {
  return world.exec('host', 'iptables', ['-w', '5', ...args]);
}

const counter = (chain: string, needle: string) => ruleCounter(world, chain, needle);

/** The reachability table of DESIGN §2, checked with real traffic. */
function reachability(): void {
  it('exposed port through a host address, client address kept', async () => {
    answered(await probe('outside', 'tcp', HOST_IP, 8080), 'c1', OUTSIDE_IP, 80);
  });

  it('exposed port directly on the container address', async () => {
    answered(await probe('outside', 'tcp', C1.address, 80), 'c1', OUTSIDE_IP, 80);
  });

  it('unexposed port: dropped directly, and a host address does not lead to it', async () => {
    const [direct, viaHost] = await Promise.all([
      probe('outside', 'tcp', C1.address, 22),
      probe('outside', 'tcp', HOST_IP, 22),
    ]);
    dropped(direct);
    refusedByHost(viaHost);
  });

  it('unexposed endpoint: dropped from outside, open to the host on any port', async () => {
    const [outside, host, hostOther] = await Promise.all([
      probe('outside', 'tcp', C2.address, 80),
      probe('host', 'tcp', C2.address, 80),
      probe('host', 'tcp', C1.address, 22),
    ]);
    dropped(outside);
    answered(host, 'c2');
    answered(hostOther, 'c1', undefined, 22);
  });

  it('another network reaches exposed ports only', async () => {
    const [exposed, other, unexposedEndpoint] = await Promise.all([
      probe('c3', 'tcp', C1.address, 80),
      probe('c3', 'tcp', C1.address, 22),
      probe('c3', 'tcp', C2.address, 80),
    ]);
    answered(exposed, 'c1', C3.address);
    dropped(other);
    dropped(unexposedEndpoint);
  });

  it('same network (icc on): any port, both ways', async () => {
    const [a, b] = await Promise.all([probe('c2', 'tcp', C1.address, 22), probe('c1', 'tcp', C2.address, 80)]);
    answered(a, 'c1', C2.address, 22);
    answered(b, 'c2', C1.address, 80);
  });

  it('same network with icc off: exposed ports only', async () => {
    const [exposed, other, unexposedEndpoint] = await Promise.all([
      probe('c4', 'tcp', C3.address, 81),
      probe('c4', 'tcp', C3.address, 22),
      probe('c3', 'tcp', C4.address, 80),
    ]);
    answered(exposed, 'c3', C4.address, 81);
    dropped(other);
    dropped(unexposedEndpoint);
  });

  it('host-IP-bound exposure: only through that address', async () => {
    const [bound, otherHostIp, direct, fromHost] = await Promise.all([
      probe('outside', 'tcp', HOST_IP, 9090),
      probe('outside', 'tcp', HOST_IP_2, 9090),
      probe('outside', 'tcp', C1.address, 90),
      probe('host', 'tcp', HOST_IP, 9090),
    ]);
    answered(bound, 'c1', OUTSIDE_IP, 90);
    refusedByHost(otherHostIp);
    dropped(direct);
    answered(fromHost, 'c1', HOST_IP, 90);
  });

  it('127.0.0.1-bound exposure: the host reaches it, nobody else through a host address', async () => {
    const [local, localUdp, outside, container] = await Promise.all([
      probe('host', 'tcp', '127.0.0.1', 5432),
      probe('host', 'udp', '127.0.0.1', 5454),
      probe('outside', 'tcp', HOST_IP, 5432),
      probe('c2', 'tcp', HOST_IP, 5432),
    ]);
    // Masqueraded: a container cannot answer 127.0.0.1.
    answered(local, 'c1', HOST_IP, 5432);
    answered(localUdp, 'c1', HOST_IP, 54);
    refusedByHost(outside);
    refusedByHost(container);
  });

  it('localhost reaches exposures on all addresses; the host keeps its address otherwise', async () => {
    const [lo, hostIp] = await Promise.all([probe('host', 'tcp', '127.0.0.1', 8080), probe('host', 'tcp', HOST_IP, 8080)]);
    answered(lo, 'c1', HOST_IP, 80);
    answered(hostIp, 'c1', HOST_IP, 80);
  });

  it('hairpin: containers reach exposures through a host address, even their own', async () => {
    const [self, sameNet, otherNet] = await Promise.all([
      probe('c1', 'tcp', HOST_IP, 8080),
      probe('c2', 'tcp', HOST_IP, 8080),
      probe('c4', 'tcp', HOST_IP, 8080),
    ]);
    answered(self, 'c1', HOST_IP, 80); // SNAT: c1 would drop a packet from its own address
    answered(sameNet, 'c1', C2.address, 80); // routed, so the source survives
    answered(otherNet, 'c1', C4.address, 80);
  });

  it('UDP: exposed through a host address and directly; unexposed dropped', async () => {
    const [viaHost, direct, unexposed, unexposedEndpoint] = await Promise.all([
      probe('outside', 'udp', HOST_IP, 5353),
      probe('outside', 'udp', C1.address, 53),
      probe('outside', 'udp', C1.address, 54),
      probe('outside', 'udp', C2.address, 53),
    ]);
    answered(viaHost, 'c1', OUTSIDE_IP, 53);
    answered(direct, 'c1', OUTSIDE_IP, 53);
    dropped(unexposed);
    dropped(unexposedEndpoint);
  });

  it('a port range maps port by port with the same offset', async () => {
    const [first, last, direct, beyond] = await Promise.all([
      probe('outside', 'tcp', HOST_IP, 7000),
      probe('outside', 'tcp', HOST_IP, 7004),
      probe('outside', 'tcp', C1.address, 5003),
      probe('outside', 'tcp', HOST_IP, 7005),
    ]);
    answered(first, 'c1', OUTSIDE_IP, 5000);
    answered(last, 'c1', OUTSIDE_IP, 5004);
    answered(direct, 'c1', OUTSIDE_IP, 5003);
    refusedByHost(beyond);
  });

  it('outbound: masqueraded for a network with masquerade on, source kept otherwise', async () => {
    const [masq, plain] = await Promise.all([probe('c1', 'tcp', OUTSIDE_IP, 80), probe('c3', 'tcp', OUTSIDE_IP, 80)]);
    answered(masq, 'outside', HOST_IP);
    answered(plain, 'outside', C3.address);
  });

  it('DNAT applies only to traffic addressed to the host (fib daddr type local)', async () => {
    // 8080 is exposed on all host addresses, but this packet is for c2, not for the host.
    dropped(await probe('outside', 'tcp', C2.address, 8080));
  });
}

describe.concurrent('reachability, no Docker rules around', () => {
  reachability();
});

describe.sequential('misbehaving senders', () => {
  it('a container sending from an address that is not its own is dropped', async () => {
    // Worst case: no reverse-path filter to help (it runs after portnet's raw chain anyway).
    await world.sysctl(HOST, 'net.ipv4.conf.all.rp_filter', '0');
    await world.sysctl(HOST, `net.ipv4.conf.${CX.hostIf}.rp_filter`, '0');
    const before = await counter('prerouting_raw', 'endpoint_sources');
    const [spoofed, honest] = await Promise.all([
      probe('cx', 'udp', C1.address, 54, SPOOFED),
      probe('cx', 'udp', C1.address, 54),
    ]);
    dropped(spoofed);
    answered(honest, 'c1', CX.address, 54);
    // UDP, so the server would have logged the datagram even though its answer cannot come back.
    expect(world.events.get('c1')?.filter((e) => e.peer === SPOOFED)).toEqual([]);
    expect(await counter('prerouting_raw', 'endpoint_sources')).toBeGreaterThan(before);
  });


  it('a crafted packet for a 127.0.0.1-bound exposure from outside is dropped (moby#45610)', async () => {
    // Worst case: the interface it arrives on has route_localnet=1 too, so the kernel's martian
    // filter would not save us; only portnet's rules do.
    await world.sysctl(HOST, 'net.ipv4.conf.tout.route_localnet', '1');
    try {
      const before = await counter('prerouting_raw', 'loopback_exposures');
      const [udp, tcp] = await Promise.all([
        probe('outside', 'udp', '127.0.0.1', 5454),
        probe('outside', 'tcp', '127.0.0.1', 5432),
      ]);
      dropped(udp);
      dropped(tcp);
      // The packets did reach the host (so the test means something) and died in portnet's rule...
      expect(await counter('prerouting_raw', 'loopback_exposures')).toBeGreaterThanOrEqual(before + 2);
      // ...and never reached the container.
      expect(world.events.get('c1')?.filter((e) => e.peer === OUTSIDE_IP && e.port === 54)).toEqual([]);
    } finally {
      await world.sysctl(HOST, 'net.ipv4.conf.tout.route_localnet', '0');
    }
  });

  it("a container cannot reach the host's loopback through the pn veth's route_localnet", async () => {
    const before = await counter('prerouting_raw', '127.0.0.0');
    const [crafted, control] = await Promise.all([
      probe('cx', 'udp', '127.0.0.1', 55),
      probe('cx', 'udp', HOST_IP, 55),
    ]);
    dropped(crafted);
    answered(control, 'host', CX.address, 55);
    expect(await counter('prerouting_raw', '127.0.0.0')).toBeGreaterThan(before);
    expect(world.events.get('host')?.filter((e) => e.peer !== CX.address)).toEqual([]);
  });
});

/** What dockerd does to iptables when it starts (moby firewall_linux.go, setup_ip_forwarding.go). */
async function dockerdStarts(): Promise<void> {
  await hostIptables('-N', 'DOCKER-USER').catch(() => undefined);
  await hostIptables('-C', 'DOCKER-USER', '-j', 'RETURN').catch(() => hostIptables('-A', 'DOCKER-USER', '-j', 'RETURN'));
  await hostIptables('-D', 'FORWARD', '-j', 'DOCKER-USER').catch(() => undefined);
  await hostIptables('-I', 'FORWARD', '-j', 'DOCKER-USER');
  await hostIptables('-P', 'FORWARD', 'DROP');
}

function dockerUserRules(listing: string): string[] {
  return listing.split('\n').filter((l) => l.startsWith('-A DOCKER-USER '));
}

describe.sequential('Docker started after portnet (FORWARD policy DROP, DOCKER-USER)', () => {
  beforeAll(async () => {
    await dockerdStarts();
  });

  it("keeps one jump, and portnet's accepts above Docker's RETURN", async () => {
    const listing = await hostIptables('-S');
    expect(listing.split('\n').filter((l) => l === '-A FORWARD -j DOCKER-USER')).toHaveLength(1);
    expect(listing).toContain('-P FORWARD DROP');
    const rules = dockerUserRules(listing);
    expect(rules.at(-1)).toBe('-A DOCKER-USER -j RETURN');
    expect(rules.slice(0, -1).every(isPortnetRule)).toBe(true);
    expect(rules.length).toBeGreaterThan(1);
  });

  it('apply again changes nothing in iptables', async () => {
    const before = await hostIptables('-S');
    await firewall.apply(MODEL);
    expect(await hostIptables('-S')).toBe(before);
  });

  it("without portnet's DOCKER-USER rules Docker's DROP wins; apply puts them back", async () => {
    // What a firewall reload does to the chain's contents.
    await hostIptables('-F', 'DOCKER-USER');
    await hostIptables('-A', 'DOCKER-USER', '-j', 'RETURN');
    dropped(await probe('outside', 'tcp', HOST_IP, 8080));
    await firewall.apply(MODEL);
    answered(await probe('outside', 'tcp', HOST_IP, 8080), 'c1', OUTSIDE_IP, 80);
  });
});

describe.concurrent('reachability under Docker FORWARD DROP', () => {
  reachability();
});

describe.sequential('failures and removal', () => {
  it('a batch nft refuses reports its message and line, and leaves the old ruleset in place', async () => {
    const broken = new NftFirewall({
      run: (program, args, input) => world.hostRunner(program, args, input?.replace('tcp . 8080 :', 'tcpx . 8080 :')),
      dockerUser: false,
    });
    const error = await broken.apply(MODEL).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NftError);
    // nft's own echo of the line it refused (the runner above corrupted the text on its way).
    expect((error as NftError).message).toMatch(/^nft rejected line \d+ of the ruleset/);
    expect((error as NftError).line).toBeGreaterThan(1);
    expect((error as NftError).message).toContain('tcpx . 8080');
    expect((error as NftError).message).toContain('Could not resolve protocol name');
    answered(await probe('outside', 'tcp', HOST_IP, 8080), 'c1', OUTSIDE_IP, 80);
  });

  it('every golden file is accepted by nft', async () => {
    const dir = fileURLToPath(new URL('../../unit/dataplane/golden/', import.meta.url));
    const files = readdirSync(dir).filter((f) => f.endsWith('.nft'));
    expect(files.length).toBeGreaterThanOrEqual(8);
    for (const f of files) await world.exec('host', 'nft', ['-c', '-f', '-'], readFileSync(dir + f, 'utf8'));
  });

  it("remove() leaves Docker's chain and jump, and nothing of portnet", async () => {
    await firewall.remove();
    expect(await world.exec('host', 'nft', ['list', 'tables'])).not.toContain('portnet');
    const listing = await hostIptables('-S');
    expect(listing.split('\n').filter(isPortnetRule)).toEqual([]);
    expect(dockerUserRules(listing)).toEqual(['-A DOCKER-USER -j RETURN']);
    expect(listing).toContain('-A FORWARD -j DOCKER-USER');
    // With the table gone nothing forwards into the pools any more under Docker's DROP.
    dropped(await probe('outside', 'tcp', C1.address, 80));
  });

  it('Docker already running: apply adds no second jump and goes above RETURN; remove() again', async () => {
    await firewall.apply(MODEL);
    const rules = dockerUserRules(await hostIptables('-S'));
    expect(rules.at(-1)).toBe('-A DOCKER-USER -j RETURN');
    expect((await hostIptables('-S')).split('\n').filter((l) => l === '-A FORWARD -j DOCKER-USER')).toHaveLength(1);
    answered(await probe('outside', 'tcp', HOST_IP, 8080), 'c1', OUTSIDE_IP, 80);
    await firewall.remove();
    expect((await hostIptables('-S')).split('\n').filter(isPortnetRule)).toEqual([]);
  });

  it('no Docker at all: apply makes DOCKER-USER and its jump, remove() takes them away again', async () => {
    await hostIptables('-D', 'FORWARD', '-j', 'DOCKER-USER');
    await hostIptables('-F', 'DOCKER-USER');
    await hostIptables('-X', 'DOCKER-USER');
    await hostIptables('-P', 'FORWARD', 'ACCEPT');
    const pristine = await hostIptables('-S');

    await firewall.apply(MODEL);
    const listing = await hostIptables('-S');
    expect(listing).toContain('-N DOCKER-USER');
    expect(listing).toContain('-A FORWARD -j DOCKER-USER');
    expect(dockerUserRules(listing).every(isPortnetRule)).toBe(true);

    await firewall.remove();
    expect(await hostIptables('-S')).toBe(pristine);
    expect(await world.exec('host', 'nft', ['list', 'tables'])).not.toContain('portnet');
    // Removing twice is fine (uninstall after a crash, say).
    await firewall.remove();
  });
});
