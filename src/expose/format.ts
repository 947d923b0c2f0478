import { hostPortToPick, type Exposure } from './types.js';

/**
 * Compact human form for logs, errors and `portnet ls`:
 *   `*:8080→80/tcp`              every address of both families (hostIp undefined)
 *   `0.0.0.0:8080→80/tcp`        every IPv4 address only
 *   `[::1]:9000-9001→90-91/udp`  one IPv6 address, a range
 *   `*:?→80/tcp`                 ephemeral host port, not chosen yet
 *   `*:?8000-8010→80/tcp`        one port of 8000-8010, not chosen yet
 * `*` is used rather than `0.0.0.0` so that "both families" and "IPv4 only" never look alike.
 */
export function formatExposure(e: Exposure): string {
  const host = e.hostIp === undefined ? '*' : formatHostIp(e.hostIp);
  return `${host}:${formatHostPorts(e)}→${formatRange(e.containerPort, e.containerPortEnd)}/${e.proto}`;
}

/** An IP as it appears before `:port`: IPv6 in brackets. */
export function formatHostIp(ip: string): string {
  return ip.includes(':') ? `[${ip}]` : ip;
}

/** A hostIp in prose: "all addresses", "0.0.0.0", "[::1]". */
export function describeAddress(hostIp: string | undefined): string {
  return hostIp === undefined ? 'all addresses' : formatHostIp(hostIp);
}

export function formatRange(start: number, end: number): string {
  return start === end ? String(start) : `${start}-${end}`;
}

const MAX_QUOTED = 64;

/**
 * A value quoted for an error message: JSON quoting (so control characters and quotes cannot forge
 * log lines) and cut short, because the value came from outside and may be huge.
 */
export function quote(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > MAX_QUOTED ? `${text.slice(0, MAX_QUOTED)}… (${text.length} characters)` : text;
}

function formatHostPorts(e: Exposure): string {
  if (e.hostPort === 0) return '?';
  const range = formatRange(e.hostPort, e.hostPortEnd);
  return hostPortToPick(e) ? `?${range}` : range;
}
