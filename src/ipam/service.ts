import type { Logger } from 'pino';
import type { AllocationRecord, CursorRecord, EndpointRecord, PoolRecord } from '../state/records.js';
import { keys, type State } from '../state/state.js';
import type { StoreOp } from '../state/store.js';
import type { RequestAddressReq, RequestPoolReq, ReleaseAddressReq } from '../protocol/schemas.js';
import {
  cidrContains,
  cidrOverlaps,
  formatCidr,
  formatIp,
  ipKey,
  parseCidr,
  parseIp,
} from './address.js';
import { capacity, isAllocatable, nextFree, usableRange, type UsableRange } from './allocate.js';
import { carveSubnet } from './carve.js';
import { type Cidr, type Family, IpamError } from './types.js';

export const LOCAL_ADDRESS_SPACE = 'portnet-local';
export const GLOBAL_ADDRESS_SPACE = 'portnet-global';
const GATEWAY_TYPE = 'com.docker.network.gateway';
/**
 * Containers route everything through the host (Calico's model), so no pool address is burnt on a
 * gateway: Docker is told the gateway is the link-local next hop that Join hands out.
 */
export const ROUTED_GATEWAY_V4 = '169.254.1.1';
/**
 * The IPv6 next hop: the host veth's link-local address (every v6 veth carries it), so no pool
 * address is spent on IPv6 either.
 */
export const ROUTED_GATEWAY_V6 = 'fe80::1';

export interface IpamConfig {
  defaultPool: string;
  defaultPoolPrefix: number;
}

/**
 * How long after start-up a request identical to one the previous process committed is taken for
 * Docker resending it (its connection died with that process). Docker resends for about 15 s.
 */
export const RETRY_WINDOW_MS = 30_000;

export interface IpamOptions {
  retryWindowMs?: number;
  now?: () => number;
}

function endpointAddresses(e: EndpointRecord): string[] {
  return e.address6 === undefined ? [e.address] : [e.address, e.address6];
}

/**
 * Docker's IpamDriver: pools and addresses over State. Callers serialise calls (one Mutex for the
 * whole plugin); every decision is committed in one store transaction before it is answered.
 */
export class IpamService {
  private readonly defaultRange: Cidr;
  /**
   * What the previous process committed and nothing uses yet: an explicit pool no network has and
   * no address was taken from, and a fixed address of a portnet network that no endpoint has. Each
   * may be answered once more, to an identical request, within the retry window: that is Docker
   * resending a call whose answer was lost when portnet died. Anything else is refused as usual.
   */
  private readonly resendable = { pools: new Set<string>(), addresses: new Set<string>() };
  private readonly until: number;
  private readonly now: () => number;

  constructor(
    private readonly state: State,
    private readonly config: IpamConfig,
    private readonly log: Logger,
    options: IpamOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.until = this.now() + (options.retryWindowMs ?? RETRY_WINDOW_MS);
    const networkPools = new Set(state.networks().flatMap((n) => [...n.pools, ...(n.pools6 ?? [])]));
    const used = new Set(state.endpoints().flatMap(endpointAddresses));
    for (const p of state.pools()) {
      if (!p.carved && !networkPools.has(p.pool) && state.allocationCount(p.id) === 0) this.resendable.pools.add(p.id);
      if (!networkPools.has(p.pool)) continue;
      for (const a of state.allocations(p.id)) {
        if (a.kind === 'address' && !used.has(a.address)) this.resendable.addresses.add(keys.alloc(p.id, ipKey(parseIp(a.address, 'address'))));
      }
    }
    this.defaultRange = parseCidr(config.defaultPool, 'default pool', { strict: true });
    if (this.defaultRange.family !== 4) throw new IpamError(`default pool "${config.defaultPool}" must be IPv4`);
    if (config.defaultPoolPrefix < this.defaultRange.prefix) {
      throw new IpamError(`default pool prefix /${config.defaultPoolPrefix} is larger than the default pool ${config.defaultPool}`);
    }
  }

  capabilities() {
    return { RequiresMACAddress: false, RequiresRequestReplay: false };
  }

  addressSpaces() {
    return { LocalDefaultAddressSpace: LOCAL_ADDRESS_SPACE, GlobalDefaultAddressSpace: GLOBAL_ADDRESS_SPACE };
  }

  async requestPool(req: RequestPoolReq) {
    const family: Family = req.V6 ? 6 : 4;
    const ops: StoreOp[] = [];
    let pool: Cidr;
    let carved = false;
    if (req.Pool === '') {
      if (req.SubPool !== '') throw new IpamError(`SubPool "${req.SubPool}" needs a Pool (--ip-range needs --subnet)`);
      if (family === 6) throw new IpamError('Pool is empty in a V6 request: IPv6 pools need an explicit --subnet (there is no default IPv6 range)');
      pool = this.carve();
      carved = true;
      ops.push({ put: keys.carveCursor(this.config.defaultPool), value: { pool: formatCidr(pool) } });
    } else {
      pool = parseCidr(req.Pool, 'Pool', { strict: true });
      if (pool.family !== family) {
        throw new IpamError(`Pool "${req.Pool}" is IPv${pool.family} but the request is for IPv${family} (V6=${req.V6})`);
      }
    }
    const poolText = formatCidr(pool);
    let subPool: string | undefined;
    if (req.SubPool !== '') {
      const sub = parseCidr(req.SubPool, 'SubPool', { strict: true });
      usableRange(pool, sub); // validates that the range lies inside the pool
      subPool = formatCidr(sub);
    }
    const resent = this.resentPool(poolText, subPool, req);
    if (resent) return resent;
    for (const other of this.state.pools()) {
      if (cidrOverlaps(pool, parseCidr(other.pool, 'pool', { strict: true }))) {
        throw new IpamError(`Pool "${poolText}" overlaps pool "${other.pool}" that is already in use`);
      }
    }
    const record: PoolRecord = {
      id: poolText,
      addressSpace: req.AddressSpace || LOCAL_ADDRESS_SPACE,
      family,
      pool: poolText,
      ...(subPool ? { subPool } : {}),
      options: req.Options,
      carved,
    };
    ops.push({ put: keys.pool(record.id), value: record });
    await this.state.commit(ops, [{ key: keys.pool(record.id), exists: false }]);
    this.log.info({ pool: poolText, subPool, carved }, 'pool created');
    return this.poolAnswer(record);
  }

  private poolAnswer(record: PoolRecord) {
    const data = { [GATEWAY_TYPE]: record.family === 4 ? `${ROUTED_GATEWAY_V4}/32` : `${ROUTED_GATEWAY_V6}/64` };
    return { PoolID: record.id, Pool: record.pool, Data: data };
  }

  /** Whether a retry window is open and `key` may be answered once more; consumes it. */
  private takeResendable(set: Set<string>, key: string): boolean {
    if (!set.has(key)) return false;
    if (this.now() > this.until) {
      this.resendable.pools.clear();
      this.resendable.addresses.clear();
      return false;
    }
    set.delete(key);
    return true;
  }

  private resentPool(poolText: string, subPool: string | undefined, req: RequestPoolReq) {
    const held = this.state.pool(poolText);
    if (!held || held.subPool !== subPool || held.family !== (req.V6 ? 6 : 4)) return undefined;
    if ((req.AddressSpace || LOCAL_ADDRESS_SPACE) !== held.addressSpace || JSON.stringify(held.options) !== JSON.stringify(req.Options)) return undefined;
    if (this.state.allocationCount(held.id) > 0 || !this.takeResendable(this.resendable.pools, held.id)) return undefined;
    this.log.warn({ pool: held.pool }, 'RequestPool resent after a restart: answered with the pool committed before');
    return this.poolAnswer(held);
  }

  private carve(): Cidr {
    const inUse = this.state.pools().map((p) => parseCidr(p.pool, 'pool', { strict: true }));
    for (const n of this.state.networks()) for (const p of n.pools) inUse.push(parseCidr(p, 'pool', { strict: true }));
    const last = this.state.get<{ pool: string }>(keys.carveCursor(this.config.defaultPool));
    const after = last ? parseCidr(last.pool, 'pool', { strict: true }) : undefined;
    const next = carveSubnet(this.defaultRange, this.config.defaultPoolPrefix, inUse, after);
    if (!next) {
      throw new IpamError(
        `default pool ${this.config.defaultPool} has no free /${this.config.defaultPoolPrefix} left; give --subnet or widen --default-pool`,
      );
    }
    return next;
  }

  async releasePool(poolId: string): Promise<void> {
    const pool = this.state.pool(poolId);
    if (!pool) {
      this.log.warn({ poolId }, 'ReleasePool for a pool portnet does not hold; nothing to do');
      return;
    }
    const ops: StoreOp[] = this.state
      .allocations(poolId)
      .map((a) => ({ delete: keys.alloc(poolId, ipKey(parseIp(a.address, 'address'))) }));
    ops.push({ delete: keys.pool(poolId) }, { delete: keys.cursor(poolId) });
    await this.state.commit(ops);
    this.log.info({ pool: pool.pool }, 'pool released');
  }

  async requestAddress(req: RequestAddressReq) {
    const pool = this.requirePool(req.PoolID);
    const cidr = parseCidr(pool.pool, 'pool', { strict: true });
    const range = usableRange(cidr, pool.subPool ? parseCidr(pool.subPool, 'SubPool', { strict: true }) : undefined);
    const kind: AllocationRecord['kind'] = req.Options[`RequestAddressType`] === GATEWAY_TYPE ? 'gateway' : 'address';
    const ops: StoreOp[] = [];
    let value: bigint;
    if (req.Address !== '') {
      const ip = parseIp(req.Address, 'Address');
      if (ip.family !== cidr.family || !cidrContains(cidr, ip)) {
        throw new IpamError(`Address "${req.Address}" is outside pool ${pool.pool}`);
      }
      // The whole pool is fair game for a chosen address (Docker allows --ip outside --ip-range),
      // but never a network or broadcast address.
      if (usableRange(cidr).excluded.has(ip.value)) {
        throw new IpamError(`Address "${req.Address}" is the network or broadcast address of pool ${pool.pool}`);
      }
      const held = this.state.allocation(pool.id, ipKey(ip));
      if (held) {
        const key = keys.alloc(pool.id, ipKey(ip));
        if (held.kind === kind && !this.state.endpoints().some((e) => endpointAddresses(e).includes(held.address)) && this.takeResendable(this.resendable.addresses, key)) {
          this.log.warn({ pool: pool.pool, address: held.address }, 'RequestAddress resent after a restart: answered with the address committed before');
          return { Address: `${held.address}/${cidr.family === 4 ? 32 : 128}`, Data: {} };
        }
        throw new IpamError(`Address "${req.Address}" is already in use in pool ${pool.pool} (${held.kind})`);
      }
      value = ip.value;
    } else {
      const cursor = this.state.get<CursorRecord>(keys.cursor(pool.id));
      const after = cursor ? parseIp(cursor.address, 'cursor').value : undefined;
      const free = nextFree(
        range,
        after,
        (v) => this.state.has(keys.alloc(pool.id, ipKey({ family: cidr.family, value: v }))),
        this.heldInRange(pool, range),
      );
      if (free === undefined) {
        throw new IpamError(
          `pool ${pool.subPool ?? pool.pool} is exhausted: all ${capacity(range)} addresses are in use`,
        );
      }
      value = free;
      ops.push({ put: keys.cursor(pool.id), value: { address: formatIp({ family: cidr.family, value }) } });
    }
    const address = formatIp({ family: cidr.family, value });
    const key = keys.alloc(pool.id, ipKey({ family: cidr.family, value }));
    ops.push({ put: key, value: { poolId: pool.id, address, kind } satisfies AllocationRecord });
    await this.state.commit(ops, [{ key, exists: false }]);
    // Endpoints get a host route each: /32 keeps every packet going through the host's firewall.
    const prefix = kind === 'gateway' ? cidr.prefix : cidr.family === 4 ? 32 : 128;
    return { Address: `${address}/${prefix}`, Data: {} };
  }

  async releaseAddress(req: ReleaseAddressReq): Promise<void> {
    const pool = this.state.pool(req.PoolID);
    if (!pool) {
      this.log.warn({ poolId: req.PoolID, address: req.Address }, 'ReleaseAddress for an unknown pool; nothing to do');
      return;
    }
    const ip = parseIp(req.Address, 'Address');
    const key = keys.alloc(pool.id, ipKey(ip));
    // Docker also releases the gateway it was given in RequestPool's Data, which no pool holds.
    if (!this.state.has(key)) return;
    await this.state.commit([{ delete: key }]);
  }

  /** Held addresses inside the allocation range; --gateway or --ip outside an --ip-range do not count. */
  private heldInRange(pool: PoolRecord, range: UsableRange): bigint {
    if (!pool.subPool) return BigInt(this.state.allocationCount(pool.id));
    let n = 0n;
    for (const a of this.state.allocations(pool.id)) if (isAllocatable(range, parseIp(a.address, 'address').value)) n++;
    return n;
  }

  private requirePool(poolId: string): PoolRecord {
    const pool = this.state.pool(poolId);
    if (!pool) throw new IpamError(`PoolID "${poolId}" is not a pool portnet holds`);
    return pool;
  }
}
