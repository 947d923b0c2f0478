// Thin wrappers over the docker CLI for e2e tests.
//
// Everything made here carries the label org.portnet.test.run=<RUN_ID> and a name starting with
// pnt-<RUN_ID>-, so sweepRun() (and scripts/testbed/cleanup.sh) can find leftovers. Pass a Cleanup to have
// the object removed after the test. Containers default to `--network none`: a test container never gets
// Docker's default bridge (which could reach out of the machine).
//
// The CLI is `docker` on PATH, or $DOCKER. A CLI newer than the engine negotiates the API version down by
// itself (CLI 28 against engine 20.10 uses API 1.41); DOCKER_API_VERSION is honoured if set.
import { randomBytes } from 'node:crypto';
import { run, type RunOptions, type RunResult } from './exec.js';
import type { Cleanup } from './cleanup.js';

export const DOCKER = process.env.DOCKER ?? 'docker';
export const TEST_IMAGE = 'portnet-test/busybox:latest';
export const RUN_LABEL = 'org.portnet.test.run';
/** Unique per test process (one vitest worker runs one file at a time). */
export const RUN_ID = randomBytes(3).toString('hex');

let seq = 0;
/** `pnt-<RUN_ID>-<base>-<n>`: a name unique to this run. */
export function uniqueName(base: string): string {
  seq += 1;
  return `pnt-${RUN_ID}-${base}-${seq}`;
}

export function docker(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(DOCKER, args, { timeoutMs: 120_000, ...opts });
}

async function dockerOut(args: readonly string[], opts: RunOptions = {}): Promise<string> {
  return (await docker(args, opts)).stdout.trim();
}

/** "1.41": the engine's API version; throws when no engine answers. */
export function engineApiVersion(): Promise<string> {
  return dockerOut(['version', '--format', '{{.Server.APIVersion}}'], { timeoutMs: 15_000 });
}

// ---------------------------------------------------------------- networks

export interface NetworkOptions {
  driver?: string;
  ipamDriver?: string;
  subnet?: string | string[];
  ipRange?: string;
  gateway?: string;
  auxAddresses?: Record<string, string>;
  /** -o key=value (driver options) */
  options?: Record<string, string>;
  /** --ipam-opt key=value */
  ipamOptions?: Record<string, string>;
  labels?: Record<string, string>;
  internal?: boolean;
  /** Appended as is. */
  extraArgs?: string[];
}

export interface CreatedNetwork {
  id: string;
  name: string;
}

export async function createNetwork(name: string, opts: NetworkOptions = {}, cleanup?: Cleanup): Promise<CreatedNetwork> {
  const args = ['network', 'create', '--label', `${RUN_LABEL}=${RUN_ID}`];
  if (opts.driver) args.push('--driver', opts.driver);
  if (opts.ipamDriver) args.push('--ipam-driver', opts.ipamDriver);
  for (const s of [opts.subnet ?? []].flat()) args.push('--subnet', s);
  if (opts.ipRange) args.push('--ip-range', opts.ipRange);
  if (opts.gateway) args.push('--gateway', opts.gateway);
  for (const [k, v] of Object.entries(opts.auxAddresses ?? {})) args.push('--aux-address', `${k}=${v}`);
  for (const [k, v] of Object.entries(opts.options ?? {})) args.push('--opt', `${k}=${v}`);
  for (const [k, v] of Object.entries(opts.ipamOptions ?? {})) args.push('--ipam-opt', `${k}=${v}`);
  for (const [k, v] of Object.entries(opts.labels ?? {})) args.push('--label', `${k}=${v}`);
  if (opts.internal) args.push('--internal');
  args.push(...(opts.extraArgs ?? []), name);
  const id = await dockerOut(args);
  cleanup?.defer(`docker network rm ${name}`, () => removeNetwork(id));
  return { id, name };
}

/** Removes a network; a network that is already gone is not an error. */
export async function removeNetwork(nameOrId: string): Promise<void> {
  const r = await docker(['network', 'rm', nameOrId], { allowFail: true });
  if (r.code !== 0 && !/not found|no such network/i.test(r.stderr)) {
    throw new Error(`docker network rm ${nameOrId}: ${r.stderr.trim()}`);
  }
}

export async function inspectNetwork(nameOrId: string): Promise<NetworkInspect> {
  const [n] = JSON.parse(await dockerOut(['network', 'inspect', nameOrId])) as NetworkInspect[];
  if (!n) throw new Error(`docker network inspect ${nameOrId}: empty answer`);
  return n;
}

export interface NetworkInspect {
  Name: string;
  Id: string;
  Driver: string;
  IPAM: { Driver: string; Options: Record<string, string> | null; Config: { Subnet?: string; IPRange?: string; Gateway?: string; AuxiliaryAddresses?: Record<string, string> }[] | null };
  Options: Record<string, string> | null;
  Labels: Record<string, string> | null;
  Containers: Record<string, { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string }> | null;
}

/** Names of networks with the given label filter (default: everything of this run). */
export async function listNetworks(labelFilter = `${RUN_LABEL}=${RUN_ID}`): Promise<string[]> {
  const out = await dockerOut(['network', 'ls', '--filter', `label=${labelFilter}`, '--format', '{{.Name}}']);
  return out ? out.split('\n') : [];
}

// ---------------------------------------------------------------- containers

/** One network attachment in `--network` long syntax (name=…,ip=…,driver-opt=…). */
export interface NetworkAttachment {
  name: string;
  ip?: string;
  ip6?: string;
  aliases?: string[];
  driverOpts?: Record<string, string>;
}

export interface ContainerOptions {
  /** Default: uniqueName('c'). */
  name?: string;
  image?: string;
  /** A network name, a long-syntax attachment, or 'none' (the default). The first one only: use connectNetwork for more. */
  network?: string | NetworkAttachment;
  /** --ip (with a plain network name) */
  ip?: string;
  /** -p values, e.g. '8080:80', '127.0.0.1:8443:443/udp', '80' */
  publish?: string[];
  publishAll?: boolean;
  /** --expose values */
  expose?: string[];
  labels?: Record<string, string>;
  env?: Record<string, string>;
  /** Extra `docker run` flags, inserted before the image. */
  extraArgs?: string[];
  /** The command; default: sleep for a day. */
  cmd?: string[];
}

export interface CreatedContainer {
  id: string;
  name: string;
}

/** CSV field quoting as the docker CLI's long --network syntax expects it. */
function csvField(s: string): string {
  return /[",\s]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function networkFlag(a: NetworkAttachment): string {
  const fields = [`name=${a.name}`];
  if (a.ip) fields.push(`ip=${a.ip}`);
  if (a.ip6) fields.push(`ip6=${a.ip6}`);
  for (const al of a.aliases ?? []) fields.push(`alias=${al}`);
  for (const [k, v] of Object.entries(a.driverOpts ?? {})) fields.push(`driver-opt=${k}=${v}`);
  return fields.map(csvField).join(',');
}

/** `docker run -d …`; returns once the container is started. */
export async function runContainer(opts: ContainerOptions = {}, cleanup?: Cleanup): Promise<CreatedContainer> {
  const name = opts.name ?? uniqueName('c');
  const args = ['run', '-d', '--name', name, '--label', `${RUN_LABEL}=${RUN_ID}`];
  const net = opts.network ?? 'none';
  args.push('--network', typeof net === 'string' ? net : networkFlag(net));
  if (opts.ip) args.push('--ip', opts.ip);
  for (const p of opts.publish ?? []) args.push('--publish', p);
  if (opts.publishAll) args.push('--publish-all');
  for (const e of opts.expose ?? []) args.push('--expose', e);
  for (const [k, v] of Object.entries(opts.labels ?? {})) args.push('--label', `${k}=${v}`);
  for (const [k, v] of Object.entries(opts.env ?? {})) args.push('--env', `${k}=${v}`);
  args.push(...(opts.extraArgs ?? []), opts.image ?? TEST_IMAGE, ...(opts.cmd ?? ['sleep', '86400']));
  // Register the cleanup before the run: a failed start can still leave a created container behind.
  cleanup?.defer(`docker rm -f ${name}`, () => removeContainer(name));
  const id = await dockerOut(args);
  return { id, name };
}

/** `docker run --rm` in the foreground (default network none); returns the result. */
export function runOnce(cmd: string[], opts: { network?: string; extraArgs?: string[]; image?: string } & RunOptions = {}): Promise<RunResult> {
  const { network = 'none', extraArgs = [], image = TEST_IMAGE, ...runOpts } = opts;
  return docker(['run', '--rm', '--label', `${RUN_LABEL}=${RUN_ID}`, '--network', network, ...extraArgs, image, ...cmd], runOpts);
}

/** docker rm -f; a container that is already gone is not an error. */
export async function removeContainer(nameOrId: string): Promise<void> {
  const r = await docker(['rm', '-f', nameOrId], { allowFail: true });
  if (r.code !== 0 && !/no such container/i.test(r.stderr)) {
    throw new Error(`docker rm -f ${nameOrId}: ${r.stderr.trim()}`);
  }
}

/** docker exec CONTAINER CMD…; throws on a non-zero status unless allowFail. */
export function dockerExec(container: string, cmd: string[], opts: RunOptions = {}): Promise<RunResult> {
  return docker(['exec', ...(opts.input !== undefined ? ['-i'] : []), container, ...cmd], opts);
}

export interface ContainerInspect {
  Id: string;
  Name: string;
  State: { Status: string; Running: boolean; Pid: number; ExitCode: number };
  Config: { Labels: Record<string, string> | null };
  NetworkSettings: {
    SandboxKey: string;
    Networks: Record<
      string,
      {
        NetworkID: string;
        EndpointID: string;
        IPAddress: string;
        IPPrefixLen: number;
        Gateway: string;
        MacAddress: string;
        GlobalIPv6Address?: string;
        GlobalIPv6PrefixLen?: number;
        IPv6Gateway?: string;
      }
    >;
    Ports: Record<string, { HostIp: string; HostPort: string }[] | null> | null;
  };
}

export async function inspectContainer(nameOrId: string): Promise<ContainerInspect> {
  const [c] = JSON.parse(await dockerOut(['container', 'inspect', nameOrId])) as ContainerInspect[];
  if (!c) throw new Error(`docker container inspect ${nameOrId}: empty answer`);
  return c;
}

/** The PID of the container's init process (for nsenter -t PID -n). */
export async function containerPid(nameOrId: string): Promise<number> {
  const c = await inspectContainer(nameOrId);
  if (!c.State.Running || c.State.Pid <= 0) throw new Error(`container ${nameOrId} is not running (${c.State.Status})`);
  return c.State.Pid;
}

/** The container's IPv4 address on `network` (or on its only network). */
export async function containerAddress(nameOrId: string, network?: string): Promise<string> {
  const nets = (await inspectContainer(nameOrId)).NetworkSettings.Networks;
  const names = Object.keys(nets);
  const key = network ?? (names.length === 1 ? names[0] : undefined);
  const n = key === undefined ? undefined : nets[key];
  if (!n?.IPAddress) throw new Error(`container ${nameOrId} has no address on ${network ?? `its only network (it has: ${names.join(', ') || 'none'})`}`);
  return n.IPAddress;
}

/** The container's IPv6 address on `network` (Docker's GlobalIPv6Address); throws when it has none. */
export async function containerAddress6(nameOrId: string, network: string): Promise<string> {
  const n = (await inspectContainer(nameOrId)).NetworkSettings.Networks[network];
  if (!n?.GlobalIPv6Address) throw new Error(`container ${nameOrId} has no IPv6 address on ${network}: ${JSON.stringify(n ?? null)}`);
  return n.GlobalIPv6Address;
}

/** The endpoint ID of the container on `network`; portnet's host link is `pn` + its first 11 characters. */
export async function containerEndpoint(nameOrId: string, network: string): Promise<string> {
  const n = (await inspectContainer(nameOrId)).NetworkSettings.Networks[network];
  if (!n?.EndpointID) throw new Error(`container ${nameOrId} has no endpoint on ${network}`);
  return n.EndpointID;
}

/** Names of containers (running or not) with the given label filter (default: everything of this run). */
export async function listContainers(labelFilter = `${RUN_LABEL}=${RUN_ID}`): Promise<string[]> {
  const out = await dockerOut(['ps', '-a', '--filter', `label=${labelFilter}`, '--format', '{{.Names}}']);
  return out ? out.split('\n') : [];
}

export async function connectNetwork(
  network: string,
  container: string,
  opts: { ip?: string; aliases?: string[]; driverOpts?: Record<string, string> } = {},
): Promise<void> {
  const args = ['network', 'connect'];
  if (opts.ip) args.push('--ip', opts.ip);
  for (const a of opts.aliases ?? []) args.push('--alias', a);
  for (const [k, v] of Object.entries(opts.driverOpts ?? {})) args.push('--driver-opt', `${k}=${v}`);
  await docker([...args, network, container]);
}

export async function disconnectNetwork(network: string, container: string, force = false): Promise<void> {
  await docker(['network', 'disconnect', ...(force ? ['--force'] : []), network, container]);
}

/** Remove every container, then every network, labelled with this run (a backstop for afterAll). */
export async function sweepRun(runId = RUN_ID): Promise<void> {
  const label = `${RUN_LABEL}=${runId}`;
  const cs = await listContainers(label);
  if (cs.length > 0) await docker(['rm', '-f', ...cs], { allowFail: true });
  for (const n of await listNetworks(label)) await removeNetwork(n);
}
