import { exposureKey } from './conflicts.js';
import { quote } from './format.js';
import { canonicalIp } from './hostip.js';
import { ExposeError, type Exposure, type Proto } from './types.js';

/** Where Docker puts -p/--publish/-P in CreateEndpoint, Join and ProgramExternalConnectivity options. */
export const PORTMAP_OPTION = 'com.docker.network.portmap';

/** IANA protocol numbers, as libnetwork's types.Protocol marshals them. */
const PROTO_BY_NUMBER: ReadonlyMap<unknown, Proto> = new Map([
  [6, 'tcp'],
  [17, 'udp'],
  [132, 'sctp'],
]);

/**
 * Docker's PortBinding list (`[{Proto, IP, Port, HostIP, HostPort, HostPortEnd}]`) as exposures, one
 * per binding and in the same order. null, undefined and [] all mean "nothing published".
 *
 * - HostIP "" (no address given) is every address of both families; "0.0.0.0" and "::" are family-wide.
 * - HostPort 0 (`-p 80`, `-P`) is an ephemeral port: hostPort = hostPortEnd = 0.
 * - HostPortEnd 0 or equal to HostPort is a single port. A larger HostPortEnd is Docker's
 *   `-p 8000-8010:80`: ONE free port out of that range for the one container port. It is kept as
 *   hostPort..hostPortEnd with containerPort === containerPortEnd, which `hostPortToPick` recognises;
 *   Docker itself splits an equal-length range (`-p 8000-8001:80-81`) into single-port bindings.
 * - IP (the container address) is always "" in practice and is ignored once checked: the endpoint's
 *   own address is the DNAT target.
 * A missing field counts as its zero value, and keys match case-insensitively, both as in Go's
 * encoding/json, which is how Docker itself reads this structure. Unknown keys are ignored.
 */
export function parsePortmap(raw: unknown, field: string = PORTMAP_OPTION): Exposure[] {
  if (raw === null || raw === undefined) return [];
  if (!Array.isArray(raw)) throw new ExposeError(`${field}: expected an array of port bindings, got ${quote(raw)}`);
  return raw.map((binding: unknown, i) => parseBinding(binding, `${field}[${i}]`));
}

/**
 * Whether two publish lists say the same thing, ignoring order (Docker reorders between calls).
 * Duplicates count, so [a, a] and [a] differ.
 */
export function samePublishSet(a: readonly Exposure[], b: readonly Exposure[]): boolean {
  if (a.length !== b.length) return false;
  const keys = (list: readonly Exposure[]): string[] => list.map(exposureKey).sort();
  const [ka, kb] = [keys(a), keys(b)];
  return ka.every((key, i) => key === kb[i]);
}

function parseBinding(binding: unknown, path: string): Exposure {
  if (typeof binding !== 'object' || binding === null || Array.isArray(binding)) {
    throw new ExposeError(`${path}: expected a port binding object, got ${quote(binding)}`);
  }
  const record = binding as Record<string, unknown>;
  const at = (key: string): { path: string; value: unknown } => ({ path: `${path}.${key}`, value: lookup(record, key) });

  const proto = parseProto(at('Proto'));
  const containerPort = parsePortField(at('Port'), 1);
  parseIpField(at('IP'));
  const hostIp = parseIpField(at('HostIP'));
  const hostPort = parsePortField(at('HostPort'), 0);
  const hostPortEnd = parseHostPortEnd(at('HostPortEnd'), hostPort);
  return {
    ...(hostIp === undefined ? {} : { hostIp }),
    hostPort,
    hostPortEnd,
    containerPort,
    containerPortEnd: containerPort,
    proto,
    origin: 'publish',
  };
}

/** The value under `key`, or under a key equal to it ignoring case (first such own key). */
function lookup(record: Record<string, unknown>, key: string): unknown {
  if (Object.hasOwn(record, key)) return record[key];
  const lower = key.toLowerCase();
  const other = Object.keys(record).find((k) => k.toLowerCase() === lower);
  return other === undefined ? undefined : record[other];
}

function parseProto({ path, value }: { path: string; value: unknown }): Proto {
  if (value === undefined || value === null) throw new ExposeError(`${path}: missing`);
  const proto = PROTO_BY_NUMBER.get(value);
  if (proto === undefined) throw new ExposeError(`${path}: ${quote(value)} is not tcp (6), udp (17) or sctp (132)`);
  return proto;
}

function parsePortField({ path, value }: { path: string; value: unknown }, min: 0 | 1): number {
  if (value === undefined || value === null) {
    if (min === 0) return 0;
    throw new ExposeError(`${path}: missing`);
  }
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new ExposeError(`${path}: expected an integer port, got ${quote(value)}`);
  }
  if (value < min || value > 65535) throw new ExposeError(`${path}: ${value} is out of range ${min}-65535`);
  return value;
}

function parseHostPortEnd(field: { path: string; value: unknown }, hostPort: number): number {
  const end = parsePortField(field, 0);
  if (end === 0) return hostPort;
  if (hostPort === 0) throw new ExposeError(`${field.path}: ${end} given without a HostPort (HostPort is 0)`);
  if (end < hostPort) throw new ExposeError(`${field.path}: ${end} is below HostPort ${hostPort}`);
  return end;
}

/** "" or absent is "no address given"; anything else must be a plain IP literal (no brackets, no zone). */
function parseIpField({ path, value }: { path: string; value: unknown }): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const ip = typeof value === 'string' ? canonicalIp(value) : undefined;
  if (ip === undefined) throw new ExposeError(`${path}: ${quote(value)} is not an IP address`);
  return ip;
}
