import { DOCKER_USER, DOCKER_USER_RULES, isPortnetRule, ruleArgs } from '../dataplane/dockerUser.js';
import { readFile } from 'node:fs/promises';
import { runCommand } from '../dataplane/exec.js';
import { POOL_ROUTE_METRIC, ROUTE_PROTO } from '../dataplane/links.js';
import { formatCidr, formatIp, parseCidr, parseIp } from '../ipam/address.js';
import { ROUTED_GATEWAY_V4 } from '../ipam/service.js';
import type { StateView } from '../server/introspect.js';
import { parseClientFlags } from './args.js';
import { fetchFirewall, fetchState, type FirewallView } from './client.js';
import { readKernel, type KernelFacts, type KernelRoute, type Runner } from './kernel.js';
import { expectedChains, expectedElements, normalizeElement } from './nftJson.js';
import { plural, printable } from './table.js';

export type Status = 'ok' | 'warn' | 'problem';

export interface Finding {
  /** Short stable name of the check, e.g. `docker-user`. */
  check: string;
  status: Status;
  message: string;
  /** What to do about it, in words. */
  fix?: string;
  /** The exact commands that fix it, as argument vectors (shown shell-quoted, never run by doctor). */
  commands?: string[][];
}

/** What doctor learnt from the running plugin; error when it did not answer. */
export interface PluginFacts {
  socket: string;
  state?: StateView;
  firewall?: FirewallView;
  error?: string;
}

const RESTART = 'restart portnet: on start it replaces its whole table from its state';
const MAX_LISTED = 6;

function listed(items: readonly string[]): string {
  const shown = items.slice(0, MAX_LISTED).join(', ');
  return items.length > MAX_LISTED ? `${shown}, … (${items.length - MAX_LISTED} more)` : shown;
}

const ipt = (...args: string[]) => ['iptables', '-w', '5', ...args];

/** IPv6 facts doctor reads itself (KernelFacts holds the IPv4 ones). */
export interface Ipv6Facts {
  /** net.ipv6.conf.all.forwarding; undefined when unreadable (no IPv6 in the kernel). */
  forwarding?: string;
  /** Routes with portnet's protocol: `ip -6 route`, main table and table local (type `local`). */
  routes: KernelRoute[];
  /** ip6tables' FORWARD policy (`ACCEPT`, `DROP`); undefined when ip6tables cannot be read. */
  forwardPolicy6?: string;
  error?: string;
}

/** Every check, on facts gathered beforehand: pure, so it runs on fakes in unit tests. */
export function diagnose(plugin: PluginFacts, kernel: KernelFacts, v6?: Ipv6Facts): Finding[] {
  const findings: Finding[] = [];
  const add = (f: Finding) => findings.push(f);
  const state = plugin.state;

  // --- the plugin itself
  if (!state) {
    add({
      check: 'plugin',
      status: 'problem',
      message: `${plugin.error ?? `portnet does not answer on ${plugin.socket}`}; the checks that compare its state with the kernel are skipped`,
      fix: 'start it (npm start, or systemctl start portnet); if it serves another socket, pass --socket PATH or set PORTNET_SOCKET',
    });
  } else {
    add({
      check: 'plugin',
      status: 'ok',
      message: `portnet answers on ${plugin.socket}: ${plural(state.networks.length, 'network')}, ${plural(state.endpoints.length, 'endpoint')}`,
    });
    const d = state.docker;
    if (d?.reachable === false) {
      add({
        check: 'docker',
        status: 'warn',
        message: `portnet cannot reach Docker${d.where ? ` at ${d.where}` : ''}${d.error ? ` (${d.error})` : ''}: container names show as "?"`,
        fix: 'start Docker, or set DOCKER_HOST in portnet\'s environment to where it listens; portnet retries by itself',
      });
    } else {
      add({ check: 'docker', status: 'ok', message: d?.reachable ? `portnet reaches Docker${d.where ? ` at ${d.where}` : ''} for container names` : 'portnet has not asked Docker yet' });
    }
  }

  // --- nftables
  if (kernel.nft.error) {
    add({ check: 'nft', status: 'problem', message: `nft cannot be run: ${kernel.nft.error}`, fix: 'install nftables (apt-get install nftables)' });
  } else if (!kernel.table) {
    const absent = kernel.tableError === 'absent';
    add({
      check: 'nft-table',
      status: state || !absent ? 'problem' : 'warn',
      message: absent ? 'table inet portnet is missing: nothing filters traffic to the containers and no exposure is translated' : `table inet portnet cannot be read: ${kernel.tableError ?? 'unknown error'}`,
      fix: RESTART,
    });
  } else {
    add({ check: 'nft-table', status: 'ok', message: `table inet portnet is present (${kernel.nft.version ?? 'nft'})` });
    if (plugin.firewall) findings.push(...tableDrift(plugin.firewall, kernel));
  }

  // --- forwarding
  if (kernel.ipForward === '1') {
    add({ check: 'ip-forward', status: 'ok', message: 'net.ipv4.ip_forward = 1' });
  } else {
    add({
      check: 'ip-forward',
      status: 'problem',
      message: `net.ipv4.ip_forward = ${kernel.ipForward ?? '(unreadable)'}: the host does not route, so no container is reachable and none reaches out`,
      fix: 'turn forwarding on, and keep it on across reboots with a line net.ipv4.ip_forward=1 in /etc/sysctl.d/90-portnet.conf',
      commands: [['sysctl', '-w', 'net.ipv4.ip_forward=1']],
    });
  }
  // Stopped cleanly with no network left, portnet removes its table and its accepts: none are expected then.
  findings.push(...dockerUserCheck(kernel, state !== undefined || kernel.table !== undefined));
  findings.push(gatewayCheck(kernel));

  // --- routes and links against the state
  if (state) findings.push(...routeAndLinkDrift(state, kernel));
  if (state && plugin.firewall && v6) findings.push(...ipv6Checks(state, plugin.firewall, v6));
  return findings;
}

function canonicalIp(text: string): string {
  try {
    return text.includes('/') ? formatCidr(parseCidr(text, 'route')) : formatIp(parseIp(text, 'route'));
  } catch {
    return text;
  }
}

/**
 * IPv6 of dual-stack networks, known from the firewall model (pools6, address6): forwarding, the
 * pools' unreachable routes, each joined endpoint's /128 and `local ::1` routes, and leftovers.
 */
function ipv6Checks(state: StateView, firewall: FirewallView, v6: Ipv6Facts): Finding[] {
  const model = firewall.model;
  const pools = model.networks.flatMap((n) => (n.pools6 ?? []).map((pool) => ({ pool, network: n.id })));
  const address6 = new Map(model.endpoints.flatMap((e) => (e.address6 ? [[e.id, e.address6] as const] : [])));
  const routes = v6.routes.filter((r) => r.type !== 'local');
  // Nothing of IPv6 in the state nor in the kernel: nothing to say.
  if (pools.length === 0 && address6.size === 0 && v6.routes.length === 0) return [];
  const out: Finding[] = [];
  if (v6.error) {
    return [{ check: 'ipv6', status: 'warn', message: `IPv6 routes cannot be read (${v6.error}): the IPv6 checks are skipped` }];
  }
  if (address6.size > 0) {
    if (v6.forwarding === '1') {
      out.push({ check: 'ip6-forward', status: 'ok', message: 'net.ipv6.conf.all.forwarding = 1' });
      // IPv6 has one forwarding switch for the whole host: what routes to the containers also
      // routes between every other pair of interfaces, unless something drops it.
      if (v6.forwardPolicy6 === 'ACCEPT') {
        out.push({
          check: 'ip6-transit',
          status: 'warn',
          message:
            "IPv6 forwarding is on and ip6tables' FORWARD policy is ACCEPT: this host routes IPv6 between all its interfaces, not only to portnet's containers (Docker 27+ sets DROP when it manages ip6tables)",
          fix: 'let your own firewall drop IPv6 transit you do not want (e.g. ip6tables -P FORWARD DROP: portnet\'s DOCKER-USER accepts and its own table still pass container traffic once Docker manages ip6tables), or enable "ip6tables": true in /etc/docker/daemon.json',
        });
      }
    } else {
      out.push({
        check: 'ip6-forward',
        status: 'problem',
        message: `net.ipv6.conf.all.forwarding = ${v6.forwarding ?? '(unreadable)'}: the host does not route IPv6, so ${plural(address6.size, 'IPv6 endpoint')} can reach nothing beyond the host`,
        fix: 'restart portnet (it turns forwarding on, first setting accept_ra=2 where it was 1 on interfaces that use router advertisements, so they keep working), or run this after setting accept_ra=2 on interfaces that use SLAAC; keep it across reboots with net.ipv6.conf.all.forwarding=1 in /etc/sysctl.d/90-portnet.conf',
        commands: [['sysctl', '-w', 'net.ipv6.conf.all.forwarding=1']],
      });
    }
  }
  const before = out.filter((f) => f.status !== 'ok').length;
  const unreachable = routes.filter((r) => r.type === 'unreachable').map((r) => ({ ...r, dst: canonicalIp(r.dst) }));
  const poolSet = new Set(pools.map((p) => p.pool));
  for (const { pool, network } of pools) {
    if (unreachable.some((r) => r.dst === pool)) continue;
    const name = state.networks.find((n) => n.id === network)?.name ?? network.slice(0, 12);
    out.push({
      check: 'pool-routes',
      status: 'problem',
      message: `IPv6 pool ${pool} of network ${name} has no unreachable route: traffic to its unallocated addresses follows the host's other routes`,
      fix: 'put it back',
      commands: [['ip', '-6', 'route', 'replace', 'unreachable', pool, 'metric', POOL_ROUTE_METRIC, 'proto', ROUTE_PROTO]],
    });
  }
  for (const r of unreachable) {
    if (poolSet.has(r.dst)) continue;
    out.push({
      check: 'pool-routes',
      status: 'problem',
      message: `unreachable route ${r.dst} (route protocol ${ROUTE_PROTO}) belongs to no IPv6 pool of the portnet on this socket: a leftover, or another portnet's`,
      fix: 'if no other portnet runs on this host, remove it',
      commands: [['ip', '-6', 'route', 'del', 'unreachable', r.dst, ...(r.metric !== undefined ? ['metric', String(r.metric)] : []), 'proto', ROUTE_PROTO]],
    });
  }
  const unicast = routes.filter((r) => r.type === 'unicast').map((r) => ({ ...r, dst: canonicalIp(r.dst).replace(/\/128$/, '') }));
  const loopback = new Set(v6.routes.filter((r) => r.type === 'local' && r.dev).map((r) => r.dev!));
  const links = new Set(state.endpoints.map((e) => e.hostIf));
  for (const e of state.endpoints) {
    const a6 = address6.get(e.id);
    if (!e.joined || !a6 || !links.has(e.hostIf)) continue;
    const who = `endpoint ${e.id.slice(0, 12)} (${e.container ? `container ${printable(e.container.name)}, ` : ''}${a6})`;
    if (!unicast.some((r) => r.dst === a6 && r.dev === e.hostIf)) {
      out.push({
        check: 'endpoint-routes',
        status: 'problem',
        message: `${who}: the /128 route to ${a6} via ${e.hostIf} is missing, so no IPv6 reaches the container`,
        fix: 'put it back',
        commands: [['ip', '-6', 'route', 'replace', `${a6}/128`, 'dev', e.hostIf, 'proto', ROUTE_PROTO]],
      });
    }
    if (!loopback.has(e.hostIf)) {
      out.push({
        check: 'endpoint-routes',
        status: 'problem',
        message: `${who}: the local ::1 route of ${e.hostIf} is missing, so replies to its [::1] exposures are dropped`,
        fix: 'put it back',
        commands: [['ip', '-6', 'route', 'replace', 'local', '::1', 'dev', e.hostIf, 'table', 'local', 'proto', ROUTE_PROTO]],
      });
    }
  }
  for (const r of unicast) {
    if (state.endpoints.some((e) => address6.get(e.id) === r.dst && e.hostIf === r.dev)) continue;
    // A route on a link that is itself a leftover goes with the link (reported above).
    if (r.dev && !links.has(r.dev) && r.dev.startsWith('pn')) continue;
    out.push({
      check: 'endpoint-routes',
      status: 'problem',
      message: `route ${r.dst}${r.dev ? ` dev ${r.dev}` : ''} (route protocol ${ROUTE_PROTO}) matches no IPv6 endpoint of the portnet on this socket`,
      fix: 'if no other portnet runs on this host, remove it',
      commands: [['ip', '-6', 'route', 'del', `${r.dst}/128`, ...(r.dev ? ['dev', r.dev] : []), 'proto', ROUTE_PROTO]],
    });
  }
  if (out.filter((f) => f.status !== 'ok').length === before && (pools.length > 0 || address6.size > 0)) {
    out.push({
      check: 'ipv6-routes',
      status: 'ok',
      message: `IPv6: ${plural(pools.length, 'pool')} with unreachable routes, ${plural(address6.size, 'endpoint')} with /128 and local ::1 routes`,
    });
  }
  return out;
}

/** What diagnose needs of IPv6, read now; a kernel without IPv6 gives an error, not a throw. */
export async function readIpv6(run: Runner = runCommand, sysctlNetDir = '/proc/sys/net'): Promise<Ipv6Facts> {
  let forwarding: string | undefined;
  try {
    forwarding = (await readFile(`${sysctlNetDir}/ipv6/conf/all/forwarding`, 'utf8')).trim();
  } catch {
    forwarding = undefined;
  }
  try {
    const main = JSON.parse((await run('ip', ['-j', '-6', 'route', 'show', 'proto', ROUTE_PROTO])) || '[]') as Array<Record<string, unknown>>;
    const local = JSON.parse((await run('ip', ['-j', '-6', 'route', 'show', 'table', 'local', 'proto', ROUTE_PROTO])) || '[]') as Array<Record<string, unknown>>;
    const routes = [...main, ...local].map((r) => ({
      type: typeof r.type === 'string' ? r.type : 'unicast',
      dst: String(r.dst),
      ...(typeof r.dev === 'string' ? { dev: r.dev } : {}),
      ...(typeof r.metric === 'number' ? { metric: r.metric } : {}),
    }));
    let forwardPolicy6: string | undefined;
    try {
      forwardPolicy6 = /^-P FORWARD (\S+)/m.exec(await run('ip6tables', ['-w', '5', '-S', 'FORWARD']))?.[1];
    } catch {
      forwardPolicy6 = undefined; // no ip6tables: nothing to say about its policy
    }
    return { ...(forwarding !== undefined ? { forwarding } : {}), routes, ...(forwardPolicy6 !== undefined ? { forwardPolicy6 } : {}) };
  } catch (err) {
    return { ...(forwarding !== undefined ? { forwarding } : {}), routes: [], error: (err as Error).message };
  }
}

function tableDrift(firewall: FirewallView, kernel: KernelFacts): Finding[] {
  const table = kernel.table!;
  const out: Finding[] = [];
  let elements = 0;
  const expected = expectedElements(firewall.model);
  for (const [name, want] of expected) {
    const live = table.sets.get(name);
    if (!live) {
      out.push({ check: 'nft-sets', status: 'problem', message: `set ${name} is missing from table inet portnet`, fix: RESTART });
      continue;
    }
    const have = new Set(live.elements.map(normalizeElement));
    const wantSet = new Set(want);
    const missing = want.filter((e) => !have.has(e));
    const extra = [...have].filter((e) => !wantSet.has(e));
    elements += want.length;
    if (missing.length > 0 || extra.length > 0) {
      const parts = [];
      if (missing.length > 0) parts.push(`${plural(missing.length, 'element')} missing (${listed(missing)})`);
      if (extra.length > 0) parts.push(`${extra.length} not in portnet's state (${listed(extra)})`);
      out.push({ check: 'nft-sets', status: 'problem', message: `${live.kind} ${name}: ${parts.join('; ')}`, fix: RESTART });
    }
  }
  const chains = expectedChains(firewall.model);
  for (const [name, rules] of chains) {
    const live = table.chains.get(name);
    if (!live) out.push({ check: 'nft-chains', status: 'problem', message: `chain ${name} is missing from table inet portnet`, fix: RESTART });
    else if (live.rules.length !== rules) {
      out.push({
        check: 'nft-chains',
        status: 'problem',
        message: `chain ${name} has ${plural(live.rules.length, 'rule')}; portnet's ruleset has ${rules}`,
        fix: RESTART,
      });
    }
  }
  if (out.length === 0) {
    out.push({
      check: 'nft-sets',
      status: 'ok',
      message: `table inet portnet matches portnet's state: ${plural(elements, 'element')} in ${expected.size} sets and maps, ${chains.size} chains`,
    });
  }
  return out;
}

function dockerUserCheck(kernel: KernelFacts, expected: boolean): Finding[] {
  const f = kernel.iptables;
  if (f.error) {
    return [{ check: 'docker-user', status: 'warn', message: `iptables cannot be read (${f.error}): Docker's FORWARD policy and portnet's DOCKER-USER accepts are not checked` }];
  }
  const policy = f.forwardPolicy ?? 'ACCEPT';
  const desired = DOCKER_USER_RULES.map((r) => `-A ${DOCKER_USER} ${r.join(' ')}`);
  const ours = f.dockerUser.filter(isPortnetRule);
  const missing = desired.filter((d) => !f.dockerUser.includes(d));
  const first = f.dockerUser.findIndex(isPortnetRule);
  const returnAbove = first >= 0 && f.dockerUser.slice(0, first).includes(`-A ${DOCKER_USER} -j RETURN`);
  const inOrder = first >= 0 && ours.length === desired.length && desired.every((d, i) => f.dockerUser[first + i] === d);
  const issues: string[] = [];
  if (!f.chainExists) issues.push(`chain ${DOCKER_USER} does not exist`);
  if (f.chainExists && f.jumps === 0) issues.push(`FORWARD has no jump to ${DOCKER_USER}`);
  if (missing.length > 0) issues.push(`${plural(missing.length, 'portnet rule')} missing from ${DOCKER_USER} (${missing.map((m) => m.slice(`-A ${DOCKER_USER} `.length)).join('; ')})`);
  else if (returnAbove) issues.push(`an unconditional RETURN in ${DOCKER_USER} comes before portnet's rules`);
  else if (!inOrder) issues.push(`portnet's rules in ${DOCKER_USER} are out of order or repeated`);
  if (issues.length === 0) {
    return [{ check: 'docker-user', status: 'ok', message: `FORWARD policy ${policy}; ${DOCKER_USER} is hooked and holds portnet's ${desired.length} accepts` }];
  }
  const commands: string[][] = [];
  if (!f.chainExists) commands.push(ipt('-N', DOCKER_USER));
  if (f.jumps === 0) commands.push(ipt('-I', 'FORWARD', '-j', DOCKER_USER));
  if (missing.length > 0 || returnAbove || !inOrder) {
    for (const line of ours) commands.push(ipt('-D', DOCKER_USER, ...ruleArgs(line)));
    DOCKER_USER_RULES.forEach((rule, i) => commands.push(ipt('-I', DOCKER_USER, String(i + 1), ...rule)));
  }
  const dropping = policy !== 'ACCEPT';
  const consequence = !expected
    ? ' (expected while portnet is stopped with no network: it removes them; it adds them again when it starts)'
    : dropping
      ? ', so traffic to and from the containers is dropped before portnet\'s table sees it'
      : '';
  return [
    {
      check: 'docker-user',
      status: dropping && expected ? 'problem' : 'warn',
      message: `FORWARD policy ${policy}: ${issues.join('; ')}${consequence}`,
      fix: 'restart portnet (it puts its DOCKER-USER rules back on every change), or run',
      commands,
    },
  ];
}

function gatewayCheck(kernel: KernelFacts): Finding {
  const r = kernel.gatewayRoute;
  const why = `proxy ARP answers for the containers' gateway ${ROUTED_GATEWAY_V4} only when the host routes that address through another interface`;
  const dummy = {
    fix: 'give the host such a route: a default route does it; without one, a dummy interface',
    commands: [
      ['ip', 'link', 'add', 'portnet0', 'type', 'dummy'],
      ['ip', 'link', 'set', 'portnet0', 'up'],
      ['ip', 'route', 'add', `${ROUTED_GATEWAY_V4}/32`, 'dev', 'portnet0'],
    ],
  };
  if (r.error) return { check: 'gateway-route', status: 'problem', message: `the host has no route to ${ROUTED_GATEWAY_V4} (${r.error}); ${why}`, ...dummy };
  if (r.type && r.type !== 'unicast') {
    return { check: 'gateway-route', status: 'problem', message: `the host's route to ${ROUTED_GATEWAY_V4} is of type ${r.type}; ${why}`, ...dummy };
  }
  if (!r.dev || r.dev.startsWith('pn')) {
    return {
      check: 'gateway-route',
      status: 'problem',
      message: `the host routes ${ROUTED_GATEWAY_V4} through ${r.dev ?? 'no interface'}, a container's link; ${why}`,
      fix: `remove that route, then ${dummy.fix}`,
      commands: [['ip', 'route', 'del', ROUTED_GATEWAY_V4, 'dev', r.dev ?? ''], ...dummy.commands],
    };
  }
  return { check: 'gateway-route', status: 'ok', message: `${ROUTED_GATEWAY_V4} routes through ${r.dev}, so proxy ARP answers for the containers' gateway` };
}

function hostRouteDst(dst: string): string {
  return dst.endsWith('/32') ? dst.slice(0, -3) : dst;
}

function routeAndLinkDrift(state: StateView, kernel: KernelFacts): Finding[] {
  const out: Finding[] = [];
  const unreachable = kernel.routes.filter((r) => r.type === 'unreachable');
  const pools = state.networks.flatMap((n) => n.pools.map((p) => ({ pool: p, network: n })));
  const poolSet = new Set(pools.map((p) => hostRouteDst(p.pool)));
  let poolOk = 0;
  for (const { pool, network } of pools) {
    if (unreachable.some((r) => hostRouteDst(r.dst) === hostRouteDst(pool))) {
      poolOk++;
      continue;
    }
    out.push({
      check: 'pool-routes',
      status: 'problem',
      message: `pool ${pool} of network ${network.name ?? network.id.slice(0, 12)} has no unreachable route: traffic to its unallocated addresses follows the host's other routes (e.g. out of the default gateway)`,
      fix: 'put it back',
      commands: [['ip', 'route', 'replace', 'unreachable', pool, 'metric', POOL_ROUTE_METRIC, 'proto', ROUTE_PROTO]],
    });
  }
  for (const r of unreachable) {
    if (poolSet.has(hostRouteDst(r.dst))) continue;
    out.push({
      check: 'pool-routes',
      status: 'problem',
      message: `unreachable route ${r.dst} (route protocol ${ROUTE_PROTO}) belongs to no pool of the portnet on this socket: a leftover, or another portnet's`,
      fix: 'if no other portnet runs on this host, remove it',
      commands: [['ip', 'route', 'del', 'unreachable', r.dst, ...(r.metric !== undefined ? ['metric', String(r.metric)] : []), 'proto', ROUTE_PROTO]],
    });
  }
  if (pools.length > 0 && poolOk === pools.length) {
    out.push({ check: 'pool-routes', status: 'ok', message: `every pool has its unreachable route (${plural(pools.length, 'pool')})` });
  }

  const links = new Map(kernel.links.map((l) => [l.name, l]));
  const names = new Map(state.networks.map((n) => [n.id, n.name]));
  const byHostIf = new Map(state.endpoints.map((e) => [e.hostIf, e]));
  const unicast = kernel.routes.filter((r) => r.type === 'unicast');
  let endpointsOk = 0;
  const joined = state.endpoints.filter((e) => e.joined);
  for (const e of joined) {
    const who = `endpoint ${e.id.slice(0, 12)} (${e.container ? `container ${printable(e.container.name)}, ` : ''}${e.address} on ${names.get(e.networkId) ?? e.networkId.slice(0, 12)})`;
    const before = out.length;
    const link = links.get(e.hostIf);
    if (!link) {
      out.push({
        check: 'endpoint-links',
        status: 'problem',
        message: `${who}: its link ${e.hostIf} is missing, so the container has lost its interface on this network`,
        fix: e.container ? `restart the container (docker restart ${printable(e.container.name)}): Docker then gives it a new endpoint` : 'restart the container that uses it: Docker then gives it a new endpoint',
      });
      continue;
    }
    if (!link.up) {
      out.push({ check: 'endpoint-links', status: 'problem', message: `${who}: link ${e.hostIf} is down`, fix: 'bring it up', commands: [['ip', 'link', 'set', e.hostIf, 'up']] });
    }
    const sys = kernel.sysctls[e.hostIf] ?? {};
    for (const [key, value] of [['proxy_arp', sys.proxyArp], ['forwarding', sys.forwarding]] as const) {
      if (value === '1') continue;
      out.push({
        check: 'endpoint-links',
        status: 'problem',
        message: `${who}: net.ipv4.conf.${e.hostIf}.${key} = ${value ?? '(unreadable)'}, so ${key === 'proxy_arp' ? 'the container\'s ARP for its gateway goes unanswered' : 'nothing is forwarded to or from it'}`,
        fix: 'set it back',
        commands: [['sysctl', '-w', `net.ipv4.conf.${e.hostIf}.${key}=1`]],
      });
    }
    if (!unicast.some((r) => hostRouteDst(r.dst) === e.address && r.dev === e.hostIf)) {
      out.push({
        check: 'endpoint-routes',
        status: 'problem',
        message: `${who}: the /32 route to ${e.address} via ${e.hostIf} is missing, so nothing reaches the container`,
        fix: 'put it back',
        commands: [['ip', 'route', 'replace', `${e.address}/32`, 'dev', e.hostIf, 'proto', ROUTE_PROTO, 'scope', 'link']],
      });
    }
    if (out.length === before) endpointsOk++;
  }
  for (const l of kernel.links) {
    if (byHostIf.has(l.name)) continue;
    out.push({
      check: 'endpoint-links',
      status: 'problem',
      message: `link ${l.name} is named like a portnet endpoint but no endpoint of the portnet on this socket has it: a leftover, or another portnet's`,
      fix: 'if no other portnet runs on this host, remove it',
      commands: [['ip', 'link', 'del', l.name]],
    });
  }
  for (const r of unicast) {
    const e = state.endpoints.find((x) => x.address === hostRouteDst(r.dst) && x.hostIf === r.dev);
    if (e) continue;
    // A route on a link that itself is an orphan goes with the link.
    if (r.dev && !byHostIf.has(r.dev) && links.has(r.dev)) continue;
    out.push({
      check: 'endpoint-routes',
      status: 'problem',
      message: `route ${r.dst}${r.dev ? ` dev ${r.dev}` : ''} (route protocol ${ROUTE_PROTO}) matches no endpoint of the portnet on this socket`,
      fix: 'if no other portnet runs on this host, remove it',
      commands: [['ip', 'route', 'del', r.dst, ...(r.dev ? ['dev', r.dev] : []), 'proto', ROUTE_PROTO]],
    });
  }
  if (joined.length > 0 && endpointsOk === joined.length) {
    out.push({ check: 'endpoint-links', status: 'ok', message: `${plural(joined.length, 'joined endpoint')}: links up, sysctls and /32 routes in place` });
  }
  return out;
}

/** `cmd 'a b'`: for showing a command to copy; doctor itself never runs one. */
export function shellQuote(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(' ');
}

export interface DoctorReport {
  socket: string;
  ok: boolean;
  problems: number;
  warnings: number;
  findings: Finding[];
}

export function report(socket: string, findings: Finding[]): DoctorReport {
  const problems = findings.filter((f) => f.status === 'problem').length;
  const warnings = findings.filter((f) => f.status === 'warn').length;
  return { socket, ok: problems === 0, problems, warnings, findings };
}

const LABEL: Record<Status, string> = { ok: 'ok', warn: 'warn', problem: 'PROBLEM' };

export function renderReport(r: DoctorReport): string {
  const width = Math.max(...r.findings.map((f) => f.check.length));
  const lines: string[] = [];
  for (const f of r.findings) {
    lines.push(`${LABEL[f.status].padEnd(8)} ${f.check.padEnd(width)}  ${f.message}`);
    const indent = ' '.repeat(8 + 1 + width + 2);
    if (f.fix) lines.push(`${indent}fix: ${f.fix}${f.commands?.length ? ':' : ''}`);
    for (const c of f.commands ?? []) lines.push(`${indent}  ${shellQuote(c)}`);
  }
  lines.push('');
  lines.push(r.ok ? `no problems${r.warnings ? `, ${plural(r.warnings, 'warning')}` : ''}` : `${plural(r.problems, 'problem')}${r.warnings ? `, ${plural(r.warnings, 'warning')}` : ''}`);
  return lines.join('\n') + '\n';
}

export async function gatherPlugin(socket: string): Promise<PluginFacts> {
  try {
    const [state, firewall] = await Promise.all([fetchState(socket), fetchFirewall(socket)]);
    return { socket, state, firewall };
  } catch (err) {
    return { socket, error: (err as Error).message };
  }
}

export async function doctorCommand(args: string[]): Promise<number> {
  const flags = parseClientFlags(args);
  const [plugin, kernel, v6] = await Promise.all([gatherPlugin(flags.socket), readKernel(), readIpv6()]);
  const r = report(flags.socket, diagnose(plugin, kernel, v6));
  process.stdout.write(flags.json ? JSON.stringify(r, null, 2) + '\n' : renderReport(r));
  return r.ok ? 0 : 1;
}
