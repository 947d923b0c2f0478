import { z } from 'zod';

/**
 * Wire shapes of every request Docker sends, PascalCase as on the wire. Unknown fields are allowed
 * (newer engines add some); missing or mistyped known fields are rejected by name.
 */
const id = z.string().regex(/^[0-9a-f]{64}$/i, 'must be 64 hexadecimal characters');
/** Docker encodes nil maps as null. */
const stringMap = z.record(z.string(), z.string()).nullish().transform((v) => v ?? {});
const anyMap = z.record(z.string(), z.unknown()).nullish().transform((v) => v ?? {});

const ipamData = z.looseObject({
  AddressSpace: z.string().optional(),
  Pool: z.string().optional(),
  Gateway: z.string().optional(),
  AuxAddresses: stringMap.optional(),
});

export const schemas = {
  empty: z.unknown(),
  RequestPool: z.looseObject({
    AddressSpace: z.string().default(''),
    Pool: z.string().default(''),
    SubPool: z.string().default(''),
    Options: stringMap,
    V6: z.boolean().default(false),
  }),
  ReleasePool: z.looseObject({ PoolID: z.string().min(1, 'must not be empty') }),
  RequestAddress: z.looseObject({
    PoolID: z.string().min(1, 'must not be empty'),
    Address: z.string().default(''),
    Options: stringMap,
  }),
  ReleaseAddress: z.looseObject({ PoolID: z.string().min(1, 'must not be empty'), Address: z.string() }),
  CreateNetwork: z.looseObject({
    NetworkID: id,
    Options: anyMap,
    IPv4Data: z.array(ipamData).nullish().transform((v) => v ?? []),
    IPv6Data: z.array(ipamData).nullish().transform((v) => v ?? []),
  }),
  NetworkOnly: z.looseObject({ NetworkID: id }),
  CreateEndpoint: z.looseObject({
    NetworkID: id,
    EndpointID: id,
    Interface: z
      .looseObject({
        Address: z.string().default(''),
        AddressIPv6: z.string().default(''),
        MacAddress: z.string().default(''),
      })
      .nullish()
      .transform((v) => v ?? { Address: '', AddressIPv6: '', MacAddress: '' }),
    Options: anyMap,
  }),
  Endpoint: z.looseObject({ NetworkID: id, EndpointID: id }),
  Join: z.looseObject({ NetworkID: id, EndpointID: id, SandboxKey: z.string().default(''), Options: anyMap }),
  ProgramExternalConnectivity: z.looseObject({ NetworkID: id, EndpointID: id, Options: anyMap }),
  AllocateNetwork: z.looseObject({ NetworkID: id }),
  Discover: z.looseObject({ DiscoveryType: z.number() }),
};

export type RequestPoolReq = z.infer<typeof schemas.RequestPool>;
export type RequestAddressReq = z.infer<typeof schemas.RequestAddress>;
export type ReleaseAddressReq = z.infer<typeof schemas.ReleaseAddress>;
export type CreateNetworkReq = z.infer<typeof schemas.CreateNetwork>;
export type CreateEndpointReq = z.infer<typeof schemas.CreateEndpoint>;
export type EndpointReq = z.infer<typeof schemas.Endpoint>;
export type JoinReq = z.infer<typeof schemas.Join>;
export type ProgramReq = z.infer<typeof schemas.ProgramExternalConnectivity>;

/** A request body that does not fit its schema; the message names each bad field and its value. */
export class BadRequest extends Error {
  override name = 'BadRequest';
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function at(body: unknown, path: PropertyKey[]): unknown {
  let v: unknown = body;
  for (const p of path) v = v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[p] : undefined;
  return v;
}

/** Validates `body` against `schema`, or throws BadRequest naming every offending field. */
export function parseRequest<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    if ((schema as z.ZodType) === schemas.empty) return body as z.infer<S>;
    throw new BadRequest(`request body must be a JSON object, got ${describe(body)}`);
  }
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const problems = result.error.issues.slice(0, 5).map((issue) => {
    const field = issue.path.map(String).join('.') || '(body)';
    return `${field} ${describe(at(body, issue.path))}: ${issue.message}`;
  });
  throw new BadRequest(`invalid request: ${problems.join('; ')}`);
}
