import { quote } from '../expose/quote.js';
import { parseSources } from '../expose/sources.js';

/** Network options portnet understands (`docker network create -o KEY=VALUE`). */
export const NETWORK_OPTIONS = {
  icc: 'com.example.icc',
  masquerade: 'com.example.masquerade',
  exposeFrom: 'com.example.expose.from',
} as const;

export interface NetworkOptions {
  icc: boolean;
  masquerade: boolean;
  /** Canonical CIDRs allowed on the network's exposures that name no sources; undefined: any source. */
  exposeFrom?: string[];
  raw: Record<string, string>;
}

export class OptionError extends Error {
  override name = 'OptionError';
}

function bool(key: string, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  throw new OptionError(`network option ${key}="${value}" must be true or false`);
}

/**
 * Reads `com.docker.network.generic` (the -o pairs). Keys under com.example. are portnet's, so an
 * unknown one is a typo worth refusing rather than a silently ignored policy.
 */
export function parseNetworkOptions(generic: unknown): NetworkOptions {
  const raw: Record<string, string> = {};
  if (generic !== undefined && generic !== null) {
    if (typeof generic !== 'object' || Array.isArray(generic)) {
      throw new OptionError(`Options.com.docker.network.generic must be an object, got ${JSON.stringify(generic)}`);
    }
    for (const [k, v] of Object.entries(generic)) {
      if (typeof v !== 'string') throw new OptionError(`network option ${k} must be a string, got ${JSON.stringify(v)}`);
      raw[k.toLowerCase()] = v;
    }
  }
  const known = new Set<string>(Object.values(NETWORK_OPTIONS));
  for (const k of Object.keys(raw)) {
    if (k.startsWith('com.example.') && !known.has(k)) {
      throw new OptionError(`unknown network option ${k}; portnet knows ${[...known].join(', ')}`);
    }
  }
  const from = raw[NETWORK_OPTIONS.exposeFrom];
  const exposeFrom = from === undefined ? undefined : sourceList(NETWORK_OPTIONS.exposeFrom, from);
  return {
    icc: raw[NETWORK_OPTIONS.icc] === undefined ? true : bool(NETWORK_OPTIONS.icc, raw[NETWORK_OPTIONS.icc]!),
    masquerade:
      raw[NETWORK_OPTIONS.masquerade] === undefined ? true : bool(NETWORK_OPTIONS.masquerade, raw[NETWORK_OPTIONS.masquerade]!),
    ...(exposeFrom === undefined ? {} : { exposeFrom }),
    raw,
  };
}

/**
 * The network-wide default allowlist. Whitespace, commas and '+' all separate, so the item syntax
 * (`10.0.0.0/8+192.0.2.0/24`) and a plain list both work. `any` is the same as leaving the option
 * out; an empty value is refused, since it is likelier an unset variable than a wish.
 */
function sourceList(key: string, value: string): string[] | undefined {
  const fail = (why: string) => new OptionError(`network option ${key}=${quote(value)}: ${why}`);
  const parsed = parseSources(value.split(/[\s,+]+/).filter((t) => t !== ''), fail);
  return parsed === 'any' ? undefined : parsed;
}

/** Endpoint driver options arrive as top-level string keys, lower-cased by Docker's --network long syntax. */
export function endpointDriverOptions(options: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(options)) {
    if (k.startsWith('com.docker.network.')) continue;
    if (typeof v !== 'string') throw new OptionError(`endpoint option ${k} must be a string, got ${JSON.stringify(v)}`);
    out[k.toLowerCase()] = v;
  }
  return out;
}
