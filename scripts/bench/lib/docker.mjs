// Docker and the host plugin for the benchmarks that need real containers (lifecycle, datapath).
import { join } from 'node:path';
import { REPO, SCRATCH, progress, run } from './common.mjs';
import { DOCKER_LABEL } from './netns.mjs';
import { Plugin } from './plugin.mjs';

export const IMAGE = 'portnet-test/busybox:latest';
/** Docker names a socket plugin after the file: driver `portnet-bench`. */
export const BENCH_SOCKET = '/run/docker/plugins/portnet-bench.sock';
export const BENCH_DRIVER = 'portnet-bench';

export function docker(args, opts = {}) {
  return run('docker', args, { timeoutMs: 180_000, ...opts });
}

/** dockerd, the test image and the unreachable routes for the test ranges (the test bed's own script). */
export async function ensureTestbed() {
  progress('test bed: scripts/testbed/prepare.sh (dockerd, image, routes)');
  await run('bash', [join(REPO, 'scripts/testbed/prepare.sh')], { timeoutMs: 900_000 });
}

/** The plugin on the host, where Docker finds it; stopping it also runs `portnet uninstall`. */
export async function startHostPlugin(cli, cleanup, name) {
  const dir = join(SCRATCH, name);
  await run('rm', ['-rf', dir]);
  const plugin = new Plugin({ cli, socket: BENCH_SOCKET, stateDir: join(dir, 'state'), logFile: join(dir, 'plugin.log') });
  cleanup.defer('stop the plugin and uninstall its rules', async () => {
    await plugin.stop();
    await run(process.execPath, [cli, 'uninstall', '--socket', BENCH_SOCKET, '--state-dir', join(dir, 'state')], { allowFail: true });
    await run('rm', ['-f', BENCH_SOCKET]);
  });
  const ms = await plugin.start();
  progress(`plugin ${BENCH_DRIVER}: pid ${plugin.pid}, answering after ${Math.round(ms)} ms (log ${plugin.logFile})`);
  return plugin;
}

export async function createNetwork(cleanup, name, { driver, subnet }) {
  const args = ['network', 'create', '--label', `${DOCKER_LABEL}=1`, '--driver', driver, '--subnet', subnet];
  if (driver === BENCH_DRIVER) args.push('--ipam-driver', BENCH_DRIVER);
  await docker(['network', 'rm', name], { allowFail: true });
  await docker([...args, name]);
  cleanup.defer(`docker network rm ${name}`, () => docker(['network', 'rm', name], { allowFail: true }));
  return name;
}

export async function removeContainer(name) {
  await docker(['rm', '-f', name], { allowFail: true });
}

export async function inspect(name) {
  return JSON.parse((await docker(['container', 'inspect', name])).stdout)[0];
}
