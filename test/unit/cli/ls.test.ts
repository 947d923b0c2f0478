import { describe, expect, it } from 'vitest';
import { lsExposure, lsRows, namesNote, renderLs } from '../../../src/cli/ls.js';
import { renderTable } from '../../../src/cli/table.js';
import type { StateView } from '../../../src/server/introspect.js';
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
      networks: [{ id: NET, name: 'web', index: 1, pools: ['198.18.1.0/24'], icc: true, masquerade: true, internal: false, options: {} }],
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

  it('shows ranges, IPv6 host addresses as not applied, and bound addresses', () => {
    const base = { containerPortEnd: 0, origin: 'publish' as const, requested: '' };
    expect(lsExposure({ ...base, hostPort: 9000, hostPortEnd: 9002, containerPort: 90, containerPortEnd: 92, proto: 'tcp' }).text).toBe('*:9000-9002 → 90-92/tcp');
    const v6 = lsExposure({ ...base, hostIp: '::1', hostPort: 80, hostPortEnd: 80, containerPort: 80, containerPortEnd: 80, proto: 'tcp' });
    expect([v6.text, v6.applied, v6.sources]).toEqual(['[::1]:80 → 80/tcp', false, 'none']);
    const bound = lsExposure({ ...base, hostIp: '198.51.100.1', hostPort: 80, hostPortEnd: 80, containerPort: 80, containerPortEnd: 80, proto: 'sctp' });
    expect([bound.text, bound.sources, bound.hostIp]).toEqual(['198.51.100.1:80 → 80/sctp', 'any', '198.51.100.1']);
  });

  it('says so when there is nothing', () => {
    expect(renderLs([])).toBe('no endpoints\n');
  });
});
