// The core issue end to end: the real plugin, the real engine, real containers and links.
import { describe, expect, it, beforeAll } from 'vitest';
import {
  Cleanup,
  containerAddress,
  createNetwork,
  createOutsideHost,
  docker,
  dockerExec,
  E2E_DRIVER,
  ensureTestbed,
  httpGet,
  inspectNetwork,
  kernelLeftovers,
  pluginState,
  removeContainer,
  removeNetwork,
  run,
  runContainer,
  startE2ePlugin,
  step,
  uniqueName,
  useCleanup,
  type PluginProcess,
  scoped,
} from './support/index.js';

const cleanup = useCleanup('all');
let plugin: PluginProcess;

beforeAll(async () => {
  await ensureTestbed();
  plugin = await startE2ePlugin(cleanup);
});

function inPool(address: string, prefix: string): boolean {
  return address.startsWith(prefix);
}

describe('portnet core on a real Docker Engine', () => {
  it('gives containers unique addresses in the pool; they reach the host and each other, on routed /32 veths', () =>
    scoped(async (local) => {
    const net = await createNetwork(uniqueName('core'), { driver: E2E_DRIVER, ipamDriver: E2E_DRIVER, subnet: '198.18.1.0/24' }, local);
    const outside = await createOutsideHost('core', {}, local);
    const names: string[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await runContainer({ network: net.name, cmd: ['httpd', '-f', '-p', '80', '-h', '/etc'] }, local);
      names.push(c.name);
    }
    const addresses = await Promise.all(names.map((n) => containerAddress(n, net.name)));
    expect(new Set(addresses).size).toBe(3);
    for (const a of addresses) expect(inPool(a, '198.18.1.')).toBe(true);

    // Inside: a /32 on eth0 and a default route via the link-local gateway; no docker0, no gwbridge.
    const addr = (await dockerExec(names[0]!, ['ip', '-4', 'addr', 'show', 'eth0'])).stdout;
    expect(addr).toContain(`inet ${addresses[0]}/32`);
    const routes = (await dockerExec(names[0]!, ['ip', 'route'])).stdout;
    expect(routes).toMatch(/default via 169\.254\.1\.1 dev eth0/);
    expect((await dockerExec(names[0]!, ['ip', '-o', 'link'])).stdout).not.toMatch(/eth1/);

    // Host side: pn<11 hex> veth with proxy ARP and a /32 route to the container.
    const state = await pluginState(plugin);
    const ep = state.endpoints.find((e) => e.address === addresses[0])!;
    expect(ep.hostIf).toMatch(/^pn[0-9a-f]{11}$/);
    expect((await kernelLeftovers()).routes).toContainEqual(expect.stringContaining(`${addresses[0]} dev ${ep.hostIf}`));

    // The host reaches each container, and the containers reach each other and a host address.
    for (const a of addresses) expect((await httpGet('host', a, 80, '/hostname')).status).toBe(200);
    const peer = await dockerExec(names[1]!, ['wget', '-q', '-O', '-', `http://${addresses[2]}/hostname`]);
    expect(peer.stdout.trim()).toBe((await dockerExec(names[2]!, ['hostname'])).stdout.trim());
    const ping = await dockerExec(names[0]!, ['ping', '-c', '1', '-W', '2', outside.hostAddress]);
    expect(ping.stdout).toMatch(/1 packets received/);
    }));

  it('honours --ip and refuses a duplicate with a clear error', () =>
    scoped(async (local) => {
    const net = await createNetwork(uniqueName('ip'), { driver: E2E_DRIVER, ipamDriver: E2E_DRIVER, subnet: '198.18.2.0/24' }, local);
    const a = await runContainer({ network: net.name, ip: '198.18.2.77' }, local);
    expect(await containerAddress(a.name, net.name)).toBe('198.18.2.77');
    const dup = uniqueName('dup');
    local.defer(`rm ${dup}`, () => removeContainer(dup));
    const r = await docker(['run', '-d', '--name', dup, '--network', net.name, '--ip', '198.18.2.77', 'portnet-test/busybox:latest', 'sleep', '60'], {
      allowFail: true,
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/198\.18\.2\.77.* already in use/);
    }));

  it('exhausts a /29 with a clear error, and addresses come back after removal', () =>
    scoped(async (local) => {
    const net = await createNetwork(uniqueName('small'), { driver: E2E_DRIVER, ipamDriver: E2E_DRIVER, subnet: '198.18.3.0/29' }, local);
    const made = [];
    for (let i = 0; i < 6; i++) made.push(await runContainer({ network: net.name }, local));
    const extra = uniqueName('extra');
    local.defer(`rm ${extra}`, () => removeContainer(extra));
    const r = await docker(['run', '-d', '--name', extra, '--network', net.name, 'portnet-test/busybox:latest', 'sleep', '60'], { allowFail: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('pool 198.18.3.0/29 is exhausted: all 6 addresses are in use');
    await removeContainer(extra);
    const freed = await containerAddress(made[2]!.name, net.name);
    await removeContainer(made[2]!.name);
    const again = await runContainer({ network: net.name }, local);
    expect(await containerAddress(again.name, net.name)).toBe(freed);
    }));

  it('gives 20 containers started in parallel 20 unique addresses', () =>
    scoped(async (local) => {
    const net = await createNetwork(uniqueName('par'), { driver: E2E_DRIVER, ipamDriver: E2E_DRIVER, subnet: '198.18.4.0/24' }, local);
    const made = await Promise.all(Array.from({ length: 20 }, () => runContainer({ network: net.name }, local)));
    const addresses = await Promise.all(made.map((c) => containerAddress(c.name, net.name)));
    expect(new Set(addresses).size).toBe(20);
    const state = await pluginState(plugin);
    const held = state.pools.find((p) => p.pool === '198.18.4.0/24')!.allocated.map((a) => a.address);
    expect(held.sort()).toEqual([...addresses].sort());
    }));

  it('after a SIGKILL and a restart, running containers keep their addresses and new ones get unique ones', () =>
    scoped(async (local) => {
    const net = await createNetwork(uniqueName('kill'), { driver: E2E_DRIVER, ipamDriver: E2E_DRIVER, subnet: '198.18.5.0/24' }, local);
    const before = await Promise.all(Array.from({ length: 4 }, () => runContainer({ network: net.name, cmd: ['httpd', '-f', '-p', '80', '-h', '/etc'] }, local)));
    const beforeAddrs = await Promise.all(before.map((c) => containerAddress(c.name, net.name)));
    step('SIGKILL the plugin');
    await plugin.kill('SIGKILL');
    // The data plane lives in the kernel: traffic flows while the plugin is down.
    expect((await httpGet('host', beforeAddrs[0]!, 80, '/hostname')).status).toBe(200);
    await plugin.start();
    const after = await Promise.all(Array.from({ length: 4 }, () => runContainer({ network: net.name }, local)));
    const afterAddrs = await Promise.all(after.map((c) => containerAddress(c.name, net.name)));
    expect(new Set([...beforeAddrs, ...afterAddrs]).size).toBe(8);
    for (const c of before) expect(await containerAddress(c.name, net.name)).toBe(beforeAddrs[before.indexOf(c)]);
    expect((await httpGet('host', beforeAddrs[1]!, 80, '/hostname')).status).toBe(200);
    }));

  it('works with Docker\'s default IPAM, and carves a subnet when none is given', () =>
    scoped(async (local) => {
    const viaDocker = await createNetwork(uniqueName('dipam'), { driver: E2E_DRIVER, subnet: '198.18.6.0/24' }, local);
    const a = await runContainer({ network: viaDocker.name, cmd: ['httpd', '-f', '-p', '80', '-h', '/etc'] }, local);
    const addrA = await containerAddress(a.name, viaDocker.name);
    expect(addrA).toMatch(/^198\.18\.6\.\d+$/);
    expect((await httpGet('host', addrA, 80, '/hostname')).status).toBe(200);

    const carved = await createNetwork(uniqueName('carve'), { driver: E2E_DRIVER, ipamDriver: E2E_DRIVER }, local);
    const subnet = (await inspectNetwork(carved.name)).IPAM.Config?.[0]?.Subnet ?? '';
    expect(subnet).toMatch(/^198\.18\.(12[89]|1[3-9]\d|2[0-5]\d)\.0\/24$/);
    const b = await runContainer({ network: carved.name }, local);
    expect(await containerAddress(b.name, carved.name)).toMatch(new RegExp(`^${subnet.split('.').slice(0, 3).join('\\.')}\\.`));
    }));

  it('a clean stop keeps the rules while networks exist, and removes them once none is left', () =>
    scoped(async (local) => {
      const net = await createNetwork(uniqueName('stop'), { driver: E2E_DRIVER, ipamDriver: E2E_DRIVER, subnet: '198.18.7.0/24' }, local);
      const c = await runContainer({ network: net.name, cmd: ['httpd', '-f', '-p', '80', '-h', '/etc'] }, local);
      const address = await containerAddress(c.name, net.name);
      await plugin.kill('SIGTERM');
      expect((await run('nft', ['list', 'table', 'inet', 'portnet'], { allowFail: true })).code).toBe(0);
      expect((await httpGet('host', address, 80, '/hostname')).status).toBe(200);
      await plugin.start();
      await removeContainer(c.name);
      await removeNetwork(net.name);
      await plugin.kill('SIGTERM');
      const table = await run('nft', ['list', 'table', 'inet', 'portnet'], { allowFail: true });
      expect(table.code).not.toBe(0);
      expect((await run('iptables', ['-S', 'DOCKER-USER'])).stdout).not.toContain('portnet');
      await plugin.start();
    }));

  it('leaves no pn* link, no route and no state row once everything is removed', async () => {
    const left = await kernelLeftovers();
    expect(left.links).toEqual([]);
    expect(left.routes).toEqual([]);
    const state = await pluginState(plugin);
    expect(state.pools).toEqual([]);
    expect(state.networks).toEqual([]);
    expect(state.endpoints).toEqual([]);
  });
});

