import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FirewallModel, ResolvedExposure } from '../../../src/dataplane/model.js';
import { NftFirewall } from '../../../src/dataplane/nft/apply.js';
import {
  HOST_IP,
  HOST_IP6,
  HOST_IP6_2,
  HOST_OTHER_IP,
  HOST_OTHER_IP6,
  OTHER_IP,
  OUTSIDE_IP,
  OUTSIDE_IP6,
  World,
  type Where,
} from './world.js';
import { answered, dropped, refusedByHost, ruleCounter } from './verdicts.js';

/**
 * Source allowlists, interface binding and IPv6 with real traffic between namespaces (see world.ts):
 * "outside" sits on the host's interface tout, "other" on tout2. "Blocked" means dropped (timeout);
 * "refused" means the packet reached the host untranslated and nothing listened there.
 */

const world = new World();
const firewall = new NftFirewall({ run: world.hostRunner, dockerUser: false });

/** A second address of the outside namespace: same link as OUTSIDE_IP, not on any allowlist. */
const OUTSIDE_IP_B = '198.51.100.4';
const OUTSIDE_IP6_B = '2001:db8:100::4';
const SPOOFED6 = '2001:db8:1::99';

const NET = { id: 'd'.repeat(64), index: 1, pools: ['198.18.1.0/24'], pools6: ['2001:db8:1::/64'], icc: true, masquerade: true };
const C1 = { name: 'c1', hostIf: 'pnd1000000001', address: '198.18.1.2', address6: '2001:db8:1::2' };
/** IPv4 only, on the dual-stack network. */
const C2 = { name: 'c2', hostIf: 'pnd1000000002', address: '198.18.1.3' };

const x = (proto: 'tcp' | 'udp', host: number, container: number, more: Partial<ResolvedExposure> = {}): ResolvedExposure => ({
  proto,
  hostPort: host,
  hostPortEnd: host,
  containerPort: container,
  containerPortEnd: container,
  ...more,
});

const MODEL: FirewallModel = {
  networks: [NET],
  endpoints: [
    {
      id: '1'.repeat(64),
      networkId: NET.id,
      hostIf: C1.hostIf,
      address: C1.address,
      address6: C1.address6,
      exposures: [
        x('tcp', 8080, 80, { sources: [`${OUTSIDE_IP}/32`, `${OUTSIDE_IP6}/128`] }),
        x('udp', 5353, 53, { sources: [`${OTHER_IP}/32`] }),
        x('tcp', 9090, 90, { hostIp: HOST_IP, sources: [`${OTHER_IP}/32`] }),
        x('tcp', 8081, 81, { hostIface: 'tout2' }),
        x('tcp', 8084, 84, { hostIface: 'tout', sources: [`${OUTSIDE_IP}/32`, `${OUTSIDE_IP6}/128`] }),
        x('tcp', 8082, 82, { hostIp: '::' }),
        x('tcp', 8083, 83, { hostIp: HOST_IP6_2 }),
        x('tcp', 5432, 5432, { hostIp: '::1' }),
        x('tcp', 8085, 85),
      ],
    },
    {
      id: '2'.repeat(64),
      networkId: NET.id,
      hostIf: C2.hostIf,
      address: C2.address,
      exposures: [x('tcp', 8086, 86, { hostIp: '::' }), x('tcp', 8087, 87)],
    },
  ],
};

const PORTS = 'tcp:22,80-90,5432';
const CONTAINER_SPECS = [PORTS, PORTS.replace('tcp', 'tcp6'), 'udp:53', 'udp6:53'];

beforeAll(async () => {
  await world.build({ ipv6: true, other: true });
  await world.container(C1.name, C1.hostIf, C1.address, C1.address6);
  await world.container(C2.name, C2.hostIf, C2.address);
  await world.exec('outside', 'ip', ['addr', 'add', `${OUTSIDE_IP_B}/24`, 'dev', 'eth0']);
  // Deprecated: used only when a probe binds to it, never as the default source.
  await world.exec('outside', 'ip', ['addr', 'add', `${OUTSIDE_IP6_B}/64`, 'dev', 'eth0', 'nodad', 'preferred_lft', '0']);
  await world.exec('c1', 'ip', ['addr', 'add', `${SPOOFED6}/128`, 'dev', 'lo']);
  await Promise.all([
    world.serve('c1', 'c1', CONTAINER_SPECS),
    world.serve('c2', 'c2', CONTAINER_SPECS),
    world.serve('outside', 'outside', ['tcp:80', 'tcp6:80']),
    // The host itself listens on a guarded port: a refused client must not land here instead.
    world.serve('host', 'host', ['tcp:8080', 'tcp6:8080', 'udp6:55']),
  ]);
  await firewall.apply(MODEL);
}, 120_000);

afterAll(async () => {
  await world.destroy();
}, 60_000);

const probe = (from: Where, proto: 'tcp' | 'udp', to: string, port: number, localAddress?: string) =>
  world.probe(from, proto, to, port, localAddress ? { localAddress } : {});


const counter = (chain: string, needle: string) => ruleCounter(world, chain, needle);

describe.concurrent('source allowlists', () => {
  it('DNAT path: the listed source reaches; another address on the same link and another network are dropped', async () => {
    const [allowed, sameLink, otherNet] = await Promise.all([
      probe('outside', 'tcp', HOST_IP, 8080),
      probe('outside', 'tcp', HOST_IP, 8080, OUTSIDE_IP_B),
      probe('other', 'tcp', HOST_OTHER_IP, 8080),
    ]);
    answered(allowed, 'c1', OUTSIDE_IP, 80);
    // Dropped, not handed to the host's own listener on 8080.
    dropped(sameLink);
    dropped(otherNet);
  });

  it('direct path on the container address: the same list', async () => {
    const [allowed, sameLink, otherNet] = await Promise.all([
      probe('outside', 'tcp', C1.address, 80),
      probe('outside', 'tcp', C1.address, 80, OUTSIDE_IP_B),
      probe('other', 'tcp', C1.address, 80),
    ]);
    answered(allowed, 'c1', OUTSIDE_IP, 80);
    dropped(sameLink);
    dropped(otherNet);
  });

  it('IPv6, both paths: the listed source reaches, others are dropped', async () => {
    const [allowed, sameLink, otherNet, direct, directOther] = await Promise.all([
      probe('outside', 'tcp', HOST_IP6, 8080),
      probe('outside', 'tcp', HOST_IP6, 8080, OUTSIDE_IP6_B),
      probe('other', 'tcp', HOST_OTHER_IP6, 8080),
      probe('outside', 'tcp', C1.address6, 80),
      probe('outside', 'tcp', C1.address6, 80, OUTSIDE_IP6_B),
    ]);
    answered(allowed, 'c1', OUTSIDE_IP6, 80);
    dropped(sameLink);
    dropped(otherNet);
    answered(direct, 'c1', OUTSIDE_IP6, 80);
    dropped(directOther);
  });

  it('UDP: allowed from the other network only, and an IPv4-only list refuses every IPv6 client', async () => {
    const [allowed, outside, direct, v6] = await Promise.all([
      probe('other', 'udp', HOST_OTHER_IP, 5353),
      probe('outside', 'udp', HOST_IP, 5353),
      probe('outside', 'udp', C1.address, 53),
      probe('other', 'udp', HOST_OTHER_IP6, 5353),
    ]);
    answered(allowed, 'c1', OTHER_IP, 53);
    dropped(outside);
    dropped(direct);
    dropped(v6);
  });

  it('an exposure bound to a host IP: allowed source through that IP, others dropped', async () => {
    const [allowed, refused] = await Promise.all([probe('other', 'tcp', HOST_IP, 9090), probe('outside', 'tcp', HOST_IP, 9090)]);
    answered(allowed, 'c1', OTHER_IP, 90);
    dropped(refused);
  });

  it("the host's own processes are never filtered; containers not on the list are", async () => {
    const [hostIp, loopback, container] = await Promise.all([
      probe('host', 'tcp', HOST_IP, 8080),
      probe('host', 'tcp', '127.0.0.1', 8080),
      probe('c2', 'tcp', HOST_IP, 8080),
    ]);
    answered(hostIp, 'c1', HOST_IP, 80);
    answered(loopback, 'c1', undefined, 80);
    dropped(container);
  });
});

describe.concurrent('interface binding', () => {
  it('reaches the container through the addresses of that interface, for packets arriving on it', async () => {
    const [v4, v6] = await Promise.all([probe('other', 'tcp', HOST_OTHER_IP, 8081), probe('other', 'tcp', HOST_OTHER_IP6, 8081)]);
    answered(v4, 'c1', OTHER_IP, 81);
    answered(v6, 'c1', undefined, 81);
  });

  it('not through another interface, nor through another address arriving on it, nor directly', async () => {
    const [otherIface, otherAddress, direct, fromHost] = await Promise.all([
      probe('outside', 'tcp', HOST_IP, 8081),
      // tout's address, arriving on tout2: the kernel would accept it (weak host model), DNAT does not.
      probe('other', 'tcp', HOST_IP, 8081),
      probe('other', 'tcp', C1.address, 81),
      // The host's own packets arrive on no interface.
      probe('host', 'tcp', HOST_OTHER_IP, 8081),
    ]);
    refusedByHost(otherIface);
    refusedByHost(otherAddress);
    dropped(direct);
    refusedByHost(fromHost);
  });

  it('with an allowlist: listed source only, both families', async () => {
    const [allowed, sameLink, allowed6, sameLink6] = await Promise.all([
      probe('outside', 'tcp', HOST_IP, 8084),
      probe('outside', 'tcp', HOST_IP, 8084, OUTSIDE_IP_B),
      probe('outside', 'tcp', HOST_IP6, 8084),
      probe('outside', 'tcp', HOST_IP6, 8084, OUTSIDE_IP6_B),
    ]);
    answered(allowed, 'c1', OUTSIDE_IP, 84);
    dropped(sameLink);
    answered(allowed6, 'c1', OUTSIDE_IP6, 84);
    dropped(sameLink6);
  });
});

describe.concurrent('IPv6', () => {
  it('[::] exposure: through a host IPv6 address and directly, client address kept; not over IPv4', async () => {
    const [viaHost, direct, v4] = await Promise.all([
      probe('outside', 'tcp', HOST_IP6, 8082),
      probe('outside', 'tcp', C1.address6, 82),
      probe('outside', 'tcp', HOST_IP, 8082),
    ]);
    answered(viaHost, 'c1', OUTSIDE_IP6, 82);
    answered(direct, 'c1', OUTSIDE_IP6, 82);
    refusedByHost(v4);
  });

  it('exposure bound to one IPv6 address: only through it', async () => {
    const [bound, otherAddress, direct] = await Promise.all([
      probe('outside', 'tcp', HOST_IP6_2, 8083),
      probe('outside', 'tcp', HOST_IP6, 8083),
      probe('outside', 'tcp', C1.address6, 83),
    ]);
    answered(bound, 'c1', OUTSIDE_IP6, 83);
    refusedByHost(otherAddress);
    dropped(direct);
  });

  it('an exposure without host IP covers both families', async () => {
    const [v4, v6] = await Promise.all([probe('outside', 'tcp', HOST_IP, 8085), probe('outside', 'tcp', HOST_IP6, 8085)]);
    answered(v4, 'c1', OUTSIDE_IP, 85);
    answered(v6, 'c1', OUTSIDE_IP6, 85);
  });

  it('unexposed port: dropped directly, and a host address does not lead to it; the host reaches any port', async () => {
    const [direct, viaHost, fromHost] = await Promise.all([
      probe('outside', 'tcp', C1.address6, 22),
      probe('outside', 'tcp', HOST_IP6, 22),
      probe('host', 'tcp', C1.address6, 22),
    ]);
    dropped(direct);
    refusedByHost(viaHost);
    answered(fromHost, 'c1', undefined, 22);
  });

  it('[::1] exposure: the host reaches it (masqueraded), nobody else through a host address', async () => {
    const [local, outside] = await Promise.all([probe('host', 'tcp', '::1', 5432), probe('outside', 'tcp', HOST_IP6, 5432)]);
    answered(local, 'c1', undefined, 5432);
    expect(local.reply?.split(' ')[1]).not.toBe('::1');
    refusedByHost(outside);
  });

  it('hairpin: a container reaches its own [::] exposure through a host address', async () => {
    const self = await probe('c1', 'tcp', HOST_IP6, 8082);
    answered(self, 'c1', undefined, 82);
    expect(self.reply?.split(' ')[1]).not.toBe(C1.address6);
  });

  it('outbound IPv6 is masqueraded like IPv4', async () => {
    answered(await probe('c1', 'tcp', OUTSIDE_IP6, 80), 'outside', HOST_IP6);
  });

  it('an IPv4-only endpoint: its [::] exposure is not applied, its IPv4 ones are', async () => {
    const [v6, v4] = await Promise.all([probe('outside', 'tcp', HOST_IP6, 8086), probe('outside', 'tcp', HOST_IP, 8087)]);
    refusedByHost(v6);
    answered(v4, 'c2', OUTSIDE_IP, 87);
  });
});

describe.sequential('changes and misbehaviour', () => {
  it('interface binding follows the addresses the interface has, with no firewall change', async () => {
    const added = '198.51.100.131';
    await world.exec('host', 'ip', ['addr', 'add', `${added}/25`, 'dev', 'tout2']);
    try {
      answered(await probe('other', 'tcp', added, 8081), 'c1', OTHER_IP, 81);
    } finally {
      await world.exec('host', 'ip', ['addr', 'del', `${added}/25`, 'dev', 'tout2']);
    }
  });

  it('refused clients die in prerouting_guard', async () => {
    const before = await counter('prerouting_guard', 'allow_any');
    dropped(await probe('outside', 'tcp', HOST_IP, 8080, OUTSIDE_IP_B));
    expect(await counter('prerouting_guard', 'allow_any')).toBeGreaterThan(before);
    expect(world.events.get('host')?.filter((e) => e.port === 8080)).toEqual([]);
  });

  it('an allowlist change applies as a delta and cuts a source at once', async () => {
    const widened: FirewallModel = structuredClone(MODEL);
    widened.endpoints[0]!.exposures[0]!.sources = [`${OUTSIDE_IP}/32`, `${OUTSIDE_IP_B}/32`, `${OUTSIDE_IP6}/128`];
    await firewall.apply(widened);
    expect(firewall.lastApply.kind).toBe('delta');
    answered(await probe('outside', 'tcp', HOST_IP, 8080, OUTSIDE_IP_B), 'c1', OUTSIDE_IP_B, 80);
    answered(await probe('outside', 'tcp', C1.address, 80, OUTSIDE_IP_B), 'c1', OUTSIDE_IP_B, 80);
    await firewall.apply(MODEL);
    expect(firewall.lastApply.kind).toBe('delta');
    dropped(await probe('outside', 'tcp', HOST_IP, 8080, OUTSIDE_IP_B));
  });

  it('a container sending from an IPv6 address that is not its own is dropped', async () => {
    const before = await counter('prerouting_raw', 'endpoint_sources6');
    const [spoofed, honest] = await Promise.all([probe('c1', 'udp', HOST_IP6, 55, SPOOFED6), probe('c1', 'udp', HOST_IP6, 55)]);
    dropped(spoofed);
    answered(honest, 'host', C1.address6, 55);
    expect(world.events.get('host')?.filter((e) => e.peer === SPOOFED6)).toEqual([]);
    expect(await counter('prerouting_raw', 'endpoint_sources6')).toBeGreaterThan(before);
  });
});
