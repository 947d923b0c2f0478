import { formatSources } from './sources.js';
import { hostPortToPick, type Exposure } from './types.js';

export { quote } from './quote.js';

/**
 * Compact human form for logs, errors and `portnet ls`:
 *   `*:8080→80/tcp`                    every address of both families (hostIp undefined)
 *   `0.0.0.0:8080→80/tcp`              every IPv4 address only
 *   `[::1]:9000-9001→90-91/udp`        one IPv6 address, a range
 *   `%eth0:8080→80/tcp`                every address of interface eth0
 *   `*:8080→80/tcp@10.0.0.0/8+2001:db8::/32`  only from those sources (`@any`: from anywhere, on purpose)
 *   `*:?→80/tcp`                       ephemeral host port, not chosen yet
 *   `*:?8000-8010→80/tcp`              one port of 8000-8010, not chosen yet
 * `*` is used rather than `0.0.0.0` so that "both families" and "IPv4 only" never look alike.
 */
export function formatExposure(e: Exposure): string {
  const from = e.sources === undefined ? '' : `@${formatSources(e.sources)}`;
  return `${formatHost(e)}:${formatHostPorts(e)}→${formatRange(e.containerPort, e.containerPortEnd)}/${e.proto}${from}`;
}

/** The host side before `:port`: `*`, an address (IPv6 in brackets) or `%ifname`. */
export function formatHost(e: Pick<Exposure, 'hostIp' | 'hostIface'>): string {
  if (e.hostIface !== undefined) return `%${e.hostIface}`;
  return e.hostIp === undefined ? '*' : formatHostIp(e.hostIp);
}

/** An IP as it appears before `:port`: IPv6 in brackets. */
export function formatHostIp(ip: string): string {
  return ip.includes(':') ? `[${ip}]` : ip;
}

/** A hostIp in prose: "all addresses", "0.0.0.0", "[::1]". */
export function describeAddress(hostIp: string | undefined): string {
  return hostIp === undefined ? 'all addresses' : formatHostIp(hostIp);
}

/** An exposure's host side in prose: "all addresses", "0.0.0.0", "[::1]", "%eth0". */
export function describeHost(e: Pick<Exposure, 'hostIp' | 'hostIface'>): string {
  return e.hostIface !== undefined ? `%${e.hostIface}` : describeAddress(e.hostIp);
}

export function formatRange(start: number, end: number): string {
  return start === end ? String(start) : `${start}-${end}`;
}

function formatHostPorts(e: Exposure): string {
  if (e.hostPort === 0) return '?';
  const range = formatRange(e.hostPort, e.hostPortEnd);
  return hostPortToPick(e) ? `?${range}` : range;
}
