// A container on two portnet networks: `docker network connect` of the second one works, each
// interface routes through its own gateway (169.254.1.N / fe80::N), an exposure on either network
// answers from outside, and the container keeps answering when it leaves the first network.
//
// Traffic only goes to the container made here, to the outside host and to the host side of its veth.
import { beforeAll, describe, expect, it } from 'vitest';
import {
  connectNetwork,
  containerAddress,
  createOutsideHost,
  disconnectNetwork,
  dockerExec,
  ensureTestbed,
  EXPOSE,
  hostnameVia,
  portnetNetwork,
  scoped,
  startE2ePlugin,
  step,
  useCleanup,
  waitOpen,
  web,
  type OutsideHost,
} from './support/index.js';

const cleanup = useCleanup('all');
let a: OutsideHost;

beforeAll(async () => {
  await ensureTestbed();
  await startE2ePlugin(cleanup);
  a = await createOutsideHost('mn', { ipv6: true }, cleanup);
});

describe('a container on two portnet networks', () => {
  it('connects a second network, reaches exposures on both from outside, and keeps working after leaving the first', () =>
    scoped(async (local) => {
      const n1 = await portnetNetwork(local, 'mn1', ['198.18.74.0/24', '2001:db8:74::/64']);
      const n2 = await portnetNetwork(local, 'mn2', ['198.18.75.0/24', '2001:db8:75::/64']);
      const c = await web(local, n1.name, { expose: '8070:80', ports: [80, 81], ipv6: true });
      await connectNetwork(n2.name, c.name, { driverOpts: { [EXPOSE]: '8071:81' } });
      const second = await containerAddress(c.name, n2.name);
      await waitOpen(second, 81);

      const routes = (await dockerExec(c.name, ['ip', 'route', 'show'])).stdout;
      const routes6 = (await dockerExec(c.name, ['ip', '-6', 'route', 'show'])).stdout;
      step(`routes in the container:\n${routes}${routes6}`);
      expect(routes).toMatch(/169\.254\.1\.1 dev eth0/);
      expect(routes).toMatch(/169\.254\.1\.2 dev eth1/);
      expect(routes6).toMatch(/fe80::2 dev eth1/);

      expect(await hostnameVia(a, a.hostAddress, 8070)).toBe(c.hostname);
      expect(await hostnameVia(a, a.hostAddress, 8071)).toBe(c.hostname);
      expect(await hostnameVia(a, a.hostAddress6!, 8071)).toBe(c.hostname);

      // Leaving the first network moves the default route to the second interface's gateway.
      await disconnectNetwork(n1.name, c.name);
      const after = (await dockerExec(c.name, ['ip', 'route', 'show'])).stdout;
      step(`after leaving ${n1.name}:\n${after}`);
      expect(after).toMatch(/default via 169\.254\.1\.2 dev eth1/);
      expect(await hostnameVia(a, a.hostAddress, 8071)).toBe(c.hostname);
      expect(await hostnameVia(a, a.hostAddress6!, 8071)).toBe(c.hostname);
    }));
});
