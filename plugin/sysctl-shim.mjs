// Preloaded by the managed plugin's entrypoint (`node --import`), before portnet itself.
//
// Docker starts a managed plugin with /proc/sys mounted read-only (runc's readonlyPaths), and runc
// refuses any mount destination inside /proc, so the host's /proc/sys/net cannot be made writable in
// place. config.json mounts it writable at PORTNET_SYSCTL_NET_DIR (/host/proc/sys/net) instead; the
// plugin shares the host's network namespace, so that is the same sysctl tree. This shim sends
// portnet's writes under /proc/sys/net/ there. Reads keep using /proc/sys/net (read-only is fine).
//
// Remove it once portnet reads PORTNET_SYSCTL_NET_DIR itself (src/dataplane/iprouteLinks.ts): a path
// that no longer starts with /proc/sys/net/ passes through untouched, so the shim is harmless until then.
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

const dir = process.env.PORTNET_SYSCTL_NET_DIR?.replace(/\/+$/, '');
const PREFIX = '/proc/sys/net/';

if (dir && dir !== '/proc/sys/net' && fs.existsSync(dir)) {
  const redirect = (file) => (typeof file === 'string' && file.startsWith(PREFIX) ? `${dir}/${file.slice(PREFIX.length)}` : file);
  const wrap = (obj, name) => {
    const original = obj[name];
    obj[name] = function (file, ...rest) {
      return original.call(this, redirect(file), ...rest);
    };
  };
  wrap(fs.promises, 'writeFile');
  wrap(fs.promises, 'open');
  wrap(fs, 'writeFile');
  wrap(fs, 'writeFileSync');
  wrap(fs, 'openSync');
  wrap(fs, 'open');
  // Named ESM imports (`import { writeFile } from 'node:fs/promises'`) are live bindings of these objects.
  syncBuiltinESMExports();
}
