export type Family = 4 | 6;

/** An address as a number; v4 and v6 alike so that allocation logic is one piece of code. */
export interface Ip {
  family: Family;
  value: bigint;
}

/** A prefix; `network` always has its host bits cleared. */
export interface Cidr {
  family: Family;
  network: bigint;
  prefix: number;
}

/** Thrown for any IPAM input or allocation problem; the message names the field and value. */
export class IpamError extends Error {
  override name = 'IpamError';
}
