import { formatExposure } from '../expose/format.js';
import type { State } from '../state/state.js';

/**
 * What portnet holds, for people and scripts (`portnet ls`, tests): read over the plugin socket so
 * that it always shows the live process's view, never a second reader of the database.
 */
export function stateSnapshot(state: State) {
  return {
    pools: state.pools().map((p) => ({
      id: p.id,
      pool: p.pool,
      ...(p.subPool ? { subPool: p.subPool } : {}),
      carved: p.carved,
      allocated: state.allocations(p.id).map((a) => ({ address: a.address, kind: a.kind })),
    })),
    networks: state.networks().map((n) => ({ id: n.id, pools: n.pools, icc: n.icc, masquerade: n.masquerade })),
    endpoints: state.endpoints().map((e) => ({
      id: e.id,
      networkId: e.networkId,
      address: e.address,
      hostIf: e.hostIf,
      joined: e.joined,
      exposures: e.exposures.map((r) => formatExposure(r.resolved)),
    })),
    keys: state.allKeys().length,
  };
}
