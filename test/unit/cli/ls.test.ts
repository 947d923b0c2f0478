import { describe, expect, it } from 'vitest';
import { lsExposure, lsRows, namesNote, renderLs, sourcesText } from '../../../src/cli/ls.js';
import { renderTable } from '../../../src/cli/table.js';
import { parseExpose } from '../../../src/expose/grammar.js';
import { stateSnapshot, type StateView } from '../../../src/server/introspect.js';
import { MemoryStore } from '../../../src/state/memoryStore.js';
import type { EndpointRecord, NetworkRecord } from '../../../src/state/records.js';
import { keys, State } from '../../../src/state/state.js';
import { NET, NET2, ep, populated, views } from './support.js';

describe('renderTable', () => {
  it('aligns columns, stacks multi-line cells and leaves no trailing blanks', () => {
    const text = renderTable(['A', 'LONGER', 'C'], [
      ['x', ['one', 'two'], 'last'],
      ['yy', 'z', ''],
    ]);
    expect(text).toBe(['A   LONGER  C', 'x   one     last', '    two', 'yy  z'].join('\n') + '\n');
  });

  it('escapes control characters so a name from Docker cannot drive the terminal', () => {
    const text = renderTable(['NAME'], [['evil\u001b[2Jname\n']]);
    expect(text).toBe('NAME\nevil\\x1b[2Jname\\x0a\n');
  });
});

describe('portnet ls', () => {
  it('lists every endpoint with its exposures as host → container, sorted by network then address', async () => {
    const { p, addresses } = await populated();
    const rows = lsRows((await views(p)).state);
    expect(rows.map((r) => [r.networkId, r.endpoint, r.address])).toEqual([
      [NET, ep(1), addresses[0]],
      [NET, ep(2), addresses[1]],
      [NET2, ep(3), addresses[2]],
    ]);
    // Without Docker nothing is named yet.
    expect(rows.every((r) => r.container === null && r.network === null)).toBe(true);
    expect(rows[0]!.exposures.map((x) => [x.text, x.sources, x.origin])).toEqual([
      ['*:8080 → 80/tcp', 'any', 'option'],
      ['*:53 → 53/udp', 'any', 'option'],
      ['127.0.0.1:5432 → 5432/tcp', 'host', 'option'],
      ['*:9443 → 443/tcp', 'any', 'publish'],
    ]);
    expect(rows[1]!.exposures).toEqual([]);
  });

  it('renders a table with "?" for unknown names and "-" where nothing is exposed', async () => {
    const { p, addresses } = await populated();
    const text = renderLs(lsRows((await views(p)).state));
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NETWORK\s+CONTAINER\s+ENDPOINT\s+ADDRESS\s+EXPOSED \(HOST → CONTAINER\)\s+FROM$/);
    expect(lines[1]).toMatch(new RegExp(`^${NET.slice(0, 12)}\\s+\\?\\s+${ep(1).slice(0, 12)}\\s+${addresses[0]}\\s+\\*:8080 → 80/tcp\\s+any$`));
    expect(lines[3]).toMatch(/^\s+127\.0\.0\.1:5432 → 5432\/tcp\s+this host only$/);
    expect(lines[5]).toMatch(new RegExp(`${addresses[1]}\\s+-\\s+-$`));
    expect(lines).toHaveLength(7);
  });

  it('shows names once known, and says why they are unknown when Docker is out of reach', () => {
    const view: StateView = {
      pools: [],
      networks: [{ id: NET, name: 'web', index: 1, pools: ['198.18.1.0/24'], pools6: [], exposeFrom: null, icc: true, masquerade: true, internal: false, options: {} }],
      endpoints: [
        {
          id: ep(1), networkId: NET, address: '198.18.1.2', prefix: 32, hostIf: 'pn01e001e001e', peerIf: 'pc01e001e001e', joined: true, options: {},
          exposures: [], exposureDetails: [], container: { id: 'c'.repeat(64), name: 'site' },
        },
        {
          id: ep(2), networkId: NET, address: '198.18.1.10', prefix: 32, hostIf: 'pn02e002e002e', peerIf: 'pc02e002e002e', joined: true, options: {},
          exposures: [], exposureDetails: [], container: null,
        },
      ],
      docker: { reachable: false, where: 'unix:///var/run/docker.sock', error: 'connect ENOENT /var/run/docker.sock' },
      keys: 0,
    };
    const rows = lsRows(view);
    expect(rows.map((r) => [r.network, r.container, r.address])).toEqual([
      ['web', 'site', '198.18.1.2'],
      ['web', null, '198.18.1.10'],
    ]);
    expect(renderLs(rows)).toMatch(/^web\s+site\s+/m);
    expect(namesNote(view, rows)).toBe('1 container name unknown: portnet cannot reach Docker at unix:///var/run/docker.sock (connect ENOENT /var/run/docker.sock)');
    expect(namesNote({ ...view, docker: { reachable: true } }, rows)).toBeUndefined();
  });

  it('shows ranges, IPv6 host addresses as applied only with an IPv6 endpoint address, and bound addresses', () => {
    const base = { containerPortEnd: 0, origin: 'publish' as const, requested: '' };
    expect(lsExposure({ ...base, hostPort: 9000, hostPortEnd: 9002, containerPort: 90, containerPortEnd: 92, proto: 'tcp' }).text).toBe('*:9000-9002 → 90-92/tcp');
    const v6x = { ...base, hostIp: '::1', hostPort: 80, hostPortEnd: 80, containerPort: 80, containerPortEnd: 80, proto: 'tcp' as const };
    const v6 = lsExposure(v6x);
    expect([v6.text, v6.applied, v6.notApplied, sourcesText(v6)]).toEqual([
      '[::1]:80 → 80/tcp', false, 'endpoint has no IPv6 address', 'not applied (endpoint has no IPv6 address)',
    ]);
    const v6on = lsExposure(v6x, true);
    expect([v6on.applied, v6on.sources, sourcesText(v6on)]).toEqual([true, 'host', 'this host only']);
    expect(Object.keys(v6on)).not.toContain('notApplied');
    for (const hostIp of ['::', '2001:db8::1']) {
      expect(lsExposure({ ...v6x, hostIp }).applied).toBe(false);
      expect(lsExposure({ ...v6x, hostIp }, true).applied).toBe(true);
    }
    // Both families: applied to IPv4 without an IPv6 address.
    expect(lsExposure({ ...v6x, hostIp: undefined }).applied).toBe(true);
    const bound = lsExposure({ ...base, hostIp: '198.51.100.1', hostPort: 80, hostPortEnd: 80, containerPort: 80, containerPortEnd: 80, proto: 'sctp' });
    expect([bound.text, bound.sources, bound.hostIp, bound.hostIface]).toEqual(['198.51.100.1:80 → 80/sctp', 'any', '198.51.100.1', null]);
  });

  it('shows interface bindings and source allowlists, saying where a list came from', () => {
    const base = { hostPort: 8080, hostPortEnd: 8080, containerPort: 80, containerPortEnd: 80, proto: 'tcp' as const, origin: 'option' as const, requested: '' };
    const iface = lsExposure({ ...base, hostIface: 'eth0' });
    expect([iface.text, iface.hostIface, iface.hostIp, iface.applied, iface.sources, iface.sourcesFrom]).toEqual([
      '%eth0:8080 → 80/tcp', 'eth0', null, true, 'any', null,
    ]);
    const own = lsExposure({ ...base, hostIface: 'eth0', sources: ['10.0.0.0/8', '2001:db8::/32'], sourcesFrom: 'item' });
    expect([own.sources, own.sourcesFrom, sourcesText(own)]).toEqual([['10.0.0.0/8', '2001:db8::/32'], 'item', '10.0.0.0/8 2001:db8::/32']);
    const inherited = lsExposure({ ...base, sources: ['192.0.2.0/24'], sourcesFrom: 'network' });
    expect(sourcesText(inherited)).toBe('192.0.2.0/24 (network default)');
    const any = lsExposure({ ...base, sources: ['0.0.0.0/0', '::/0'], sourcesFrom: 'item' });
    expect([any.sources, any.sourcesFrom, sourcesText(any)]).toEqual(['any', 'item', 'any']);
  });

  it('shows the effective sources of a network with com.example.expose.from, and the IPv6 address', async () => {
    const state = await State.load(new MemoryStore());
    const network: NetworkRecord = {
      id: NET, index: 1, pools: ['198.18.1.0/24'], pools6: ['2001:db8:1::/64'], exposeFrom: ['10.0.0.0/8'],
      options: { 'com.example.expose.from': '10.0.0.0/8' }, icc: true, masquerade: true, internal: false,
    };
    const exposures = parseExpose('8080:80 %eth0:8081:81 8082:82@192.0.2.0/24 8083:83@any 127.0.0.1:5432:5432 [::1]:5433:5433');
    const endpoint: EndpointRecord = {
      id: ep(1), networkId: NET, hostIf: 'pn01', peerIf: 'pc01', address: '198.18.1.2', prefix: 32,
      address6: '2001:db8:1::2', prefix6: 128, options: {}, joined: true,
      exposures: exposures.map((x) => ({ requested: x, resolved: x })),
    };
    await state.commit([{ put: keys.network(NET), value: network }, { put: keys.endpoint(ep(1)), value: endpoint }]);
    const view = stateSnapshot(state);
    expect(view.networks[0]).toMatchObject({ pools6: ['2001:db8:1::/64'], exposeFrom: ['10.0.0.0/8'] });
    expect(view.endpoints[0]).toMatchObject({ address6: '2001:db8:1::2', prefix6: 128 });
    expect(view.endpoints[0]!.exposures).toEqual([
      '*:8080→80/tcp@10.0.0.0/8',
      '%eth0:8081→81/tcp@10.0.0.0/8',
      '*:8082→82/tcp@192.0.2.0/24',
      '*:8083→83/tcp@any',
      '127.0.0.1:5432→5432/tcp',
      '[::1]:5433→5433/tcp',
    ]);
    // `requested` is what the item said, without the network's default.
    expect(view.endpoints[0]!.exposureDetails.map((x) => x.requested)).toEqual([
      '*:8080→80/tcp', '%eth0:8081→81/tcp', '*:8082→82/tcp@192.0.2.0/24', '*:8083→83/tcp@any', '127.0.0.1:5432→5432/tcp', '[::1]:5433→5433/tcp',
    ]);
    const [row] = lsRows(JSON.parse(JSON.stringify(view)) as StateView);
    expect(row!.address6).toBe('2001:db8:1::2');
    expect(row!.exposures.map((x) => [x.text, sourcesText(x), x.applied])).toEqual([
      ['*:8080 → 80/tcp', '10.0.0.0/8 (network default)', true],
      ['%eth0:8081 → 81/tcp', '10.0.0.0/8 (network default)', true],
      ['*:8082 → 82/tcp', '192.0.2.0/24', true],
      ['*:8083 → 83/tcp', 'any', true],
      ['127.0.0.1:5432 → 5432/tcp', 'this host only', true],
      ['[::1]:5433 → 5433/tcp', 'this host only', true],
    ]);
    const lines = renderLs([row!]).trimEnd().split('\n');
    expect(lines[1]).toMatch(/198\.18\.1\.2\s+\*:8080 → 80\/tcp\s+10\.0\.0\.0\/8 \(network default\)$/);
    expect(lines[2]).toMatch(/^\s+2001:db8:1::2\s+%eth0:8081 → 81\/tcp\s+10\.0\.0\.0\/8 \(network default\)$/);

    // Without an IPv6 address the IPv6 host IP is not applied.
    const { address6: _, prefix6: __, ...v4only } = endpoint;
    await state.commit([{ put: keys.endpoint(ep(1)), value: v4only }]);
    const [row4] = lsRows(stateSnapshot(state));
    expect(row4!.address6).toBeNull();
    expect(sourcesText(row4!.exposures[5]!)).toBe('not applied (endpoint has no IPv6 address)');
  });

  it('says so when there is nothing', () => {
    expect(renderLs([])).toBe('no endpoints\n');
  });
});
