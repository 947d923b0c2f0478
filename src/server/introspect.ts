import type { ContainerRef, DockerStatus } from '../docker/names.js';
import { formatExposure } from '../expose/format.js';
import { effectiveSources } from '../expose/sources.js';
import type { Exposure } from '../expose/types.js';
import type { Resolved } from '../expose/resolve.js';
import { poolCapacity } from '../metrics/usage.js';
import type { State } from '../state/state.js';

/** What the state view needs to know about Docker; the real one is docker/names.ts. */
export interface NameLookup {
  container(endpointId: string): ContainerRef | undefined;
  networkName(networkId: string): string | undefined;
  docker(): DockerStatus;
}

/**
 * One published port or range with its host port resolved, as `portnet ls` and `inspect` show it.
 * `sources` is the effective allowlist, as the firewall applies it: the item's own, else the
 * network's `com.example.expose.from` (never on a loopback host IP, which is not filtered).
 */
export type ExposureView = Exposure & {
  /** As asked for, e.g. `*:?→80/tcp` for `-p 80`, `*:80→80/tcp@10.0.0.0/8` for `80@10.0.0.0/8`. */
  requested: string;
  /** Where `sources` came from; absent when there are none. */
  sourcesFrom?: 'item' | 'network';
};

/** GET /portnet/v1/state: networks, endpoints, pools and what is exposed, as the live process holds them. */
export interface StateView {
  pools: Array<{ id: string; pool: string; subPool?: string; carved: boolean; capacity: number; allocated: Array<{ address: string; kind: string }> }>;
  networks: Array<{
    id: string;
    /** Docker's name, once learnt (null until then or without Docker). */
    name: string | null;
    index: number;
    pools: string[];
    /** IPv6 pools (dual-stack networks); empty otherwise. */
    pools6: string[];
    /** `com.example.expose.from` as canonical CIDRs; null when the network has no default allowlist. */
    exposeFrom: string[] | null;
    icc: boolean;
    masquerade: boolean;
    internal: boolean;
    options: Record<string, string>;
  }>;
  endpoints: Array<{
    id: string;
    networkId: string;
    address: string;
    prefix: number;
    /** IPv6 address and prefix, on dual-stack networks only. */
    address6?: string;
    prefix6?: number;
    mac?: string;
    hostIf: string;
    peerIf: string;
    joined: boolean;
    sandboxKey?: string;
    options: Record<string, string>;
    /** Compact form of every exposure (formatExposure), with its effective sources. */
    exposures: string[];
    exposureDetails: ExposureView[];
    /** The container, once learnt from Docker (null until then). */
    container: { id: string | null; name: string } | null;
  }>;
  /** Whether portnet can reach Docker to learn container names. */
  docker: DockerStatus;
  keys: number;
}

const NO_NAMES: NameLookup = {
  container: () => undefined,
  networkName: () => undefined,
  docker: () => ({ reachable: false, error: 'no Docker client configured' }),
};

/**
 * What portnet holds, for people and scripts (`portnet ls`, tests): read over the plugin socket so
 * that it always shows the live process's view, never a second reader of the database.
 */
export function stateSnapshot(state: State, names: NameLookup = NO_NAMES): StateView {
  return {
    pools: state.pools().map((p) => ({
      id: p.id,
      pool: p.pool,
      ...(p.subPool ? { subPool: p.subPool } : {}),
      carved: p.carved,
      capacity: poolCapacity(p),
      allocated: state.allocations(p.id).map((a) => ({ address: a.address, kind: a.kind })),
    })),
    networks: state.networks().map((n) => ({
      id: n.id,
      name: names.networkName(n.id) ?? null,
      index: n.index,
      pools: n.pools,
      pools6: n.pools6 ?? [],
      exposeFrom: n.exposeFrom ?? null,
      icc: n.icc,
      masquerade: n.masquerade,
      internal: n.internal,
      options: n.options,
    })),
    endpoints: state.endpoints().map((e) => {
      const c = names.container(e.id);
      const exposeFrom = state.network(e.networkId)?.exposeFrom;
      const details = e.exposures.map((r) => exposureView(r, exposeFrom));
      return {
        id: e.id,
        networkId: e.networkId,
        address: e.address,
        prefix: e.prefix,
        ...(e.address6 !== undefined ? { address6: e.address6 } : {}),
        ...(e.prefix6 !== undefined ? { prefix6: e.prefix6 } : {}),
        ...(e.mac ? { mac: e.mac } : {}),
        hostIf: e.hostIf,
        peerIf: e.peerIf,
        joined: e.joined,
        ...(e.sandboxKey ? { sandboxKey: e.sandboxKey } : {}),
        options: e.options,
        exposures: details.map(formatExposure),
        exposureDetails: details,
        container: c ? { id: c.id ?? null, name: c.name } : null,
      };
    }),
    docker: names.docker(),
    keys: state.allKeys().length,
  };
}

/** The exposure with the sources the firewall enforces (firewallModel.ts applies the same default). */
function exposureView({ requested, resolved }: Resolved, exposeFrom: string[] | undefined): ExposureView {
  const effective = effectiveSources(resolved, exposeFrom);
  const { sources: _own, ...rest } = resolved;
  return {
    ...rest,
    ...(effective === undefined ? {} : { sources: effective.sources, sourcesFrom: effective.from }),
    requested: formatExposure(requested),
  };
}
