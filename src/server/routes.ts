import type { z } from 'zod';
import { schemas } from '../protocol/schemas.js';
import type { IpamService } from '../ipam/service.js';
import type { NetworkDriver } from '../network/driver.js';

export interface Route<S extends z.ZodType = z.ZodType> {
  schema: S;
  /** Reads or changes state: run one at a time under the plugin's lock. */
  serial: boolean;
  handle: (body: z.infer<S>) => Promise<unknown> | unknown;
}

function route<S extends z.ZodType>(schema: S, serial: boolean, handle: (body: z.infer<S>) => Promise<unknown> | unknown): Route {
  return { schema, serial, handle } as Route;
}

const EMPTY = {};

/** Told about calls that mean "a dockerd has (re)started": it may schedule work, never wait for it. */
export interface RouteHooks {
  activated?: (by: string) => void;
}

/** Every path Docker calls, in one table: the wire name, the body's shape, and the domain call. */
export function routeTable(ipam: IpamService, driver: NetworkDriver, hooks: RouteHooks = {}): Record<string, Route> {
  return {
    '/Plugin.Activate': route(schemas.empty, false, () => (hooks.activated?.('Plugin.Activate'), { Implements: ['NetworkDriver', 'IpamDriver'] })),

    '/IpamDriver.GetCapabilities': route(schemas.empty, false, () => ipam.capabilities()),
    '/IpamDriver.GetDefaultAddressSpaces': route(schemas.empty, false, () => ipam.addressSpaces()),
    '/IpamDriver.RequestPool': route(schemas.RequestPool, true, (b) => ipam.requestPool(b)),
    '/IpamDriver.ReleasePool': route(schemas.ReleasePool, true, async (b) => (await ipam.releasePool(b.PoolID), EMPTY)),
    '/IpamDriver.RequestAddress': route(schemas.RequestAddress, true, (b) => ipam.requestAddress(b)),
    '/IpamDriver.ReleaseAddress': route(schemas.ReleaseAddress, true, async (b) => (await ipam.releaseAddress(b), EMPTY)),

    // A managed plugin is never sent Plugin.Activate; a new dockerd asks for its capabilities instead.
    '/NetworkDriver.GetCapabilities': route(schemas.empty, false, () => (hooks.activated?.('NetworkDriver.GetCapabilities'), driver.capabilities())),
    '/NetworkDriver.CreateNetwork': route(schemas.CreateNetwork, true, async (b) => (await driver.createNetwork(b), EMPTY)),
    '/NetworkDriver.DeleteNetwork': route(schemas.NetworkOnly, true, async (b) => (await driver.deleteNetwork(b.NetworkID), EMPTY)),
    '/NetworkDriver.AllocateNetwork': route(schemas.AllocateNetwork, false, () => ({ Options: {} })),
    '/NetworkDriver.FreeNetwork': route(schemas.NetworkOnly, false, () => EMPTY),
    '/NetworkDriver.CreateEndpoint': route(schemas.CreateEndpoint, true, (b) => driver.createEndpoint(b)),
    '/NetworkDriver.DeleteEndpoint': route(schemas.Endpoint, true, async (b) => (await driver.deleteEndpoint(b.NetworkID, b.EndpointID), EMPTY)),
    '/NetworkDriver.EndpointOperInfo': route(schemas.Endpoint, false, (b) => driver.endpointOperInfo(b.NetworkID, b.EndpointID)),
    '/NetworkDriver.Join': route(schemas.Join, true, (b) => driver.join(b)),
    '/NetworkDriver.Leave': route(schemas.Endpoint, true, async (b) => (await driver.leave(b.NetworkID, b.EndpointID), EMPTY)),
    '/NetworkDriver.ProgramExternalConnectivity': route(schemas.ProgramExternalConnectivity, true, async (b) => (await driver.programExternalConnectivity(b), EMPTY)),
    '/NetworkDriver.RevokeExternalConnectivity': route(schemas.Endpoint, true, async (b) => (await driver.revokeExternalConnectivity(b.NetworkID, b.EndpointID), EMPTY)),
    '/NetworkDriver.DiscoverNew': route(schemas.Discover, false, () => EMPTY),
    '/NetworkDriver.DiscoverDelete': route(schemas.Discover, false, () => EMPTY),
  };
}
