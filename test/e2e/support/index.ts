// One import for e2e tests: `import { … } from './support/index.js'`.
export * from './exec.js';
export * from './bed.js';
export * from './cleanup.js';
export * from './docker.js';
export * from './outside.js';
export * from './net.js';
export * from './plugin.js';
export * from './portnet.js';
export * from './web.js';
