export * from './targets';
export * from './runtimes';
export * from './variant';
export * from './node-contract';
export * from './vendor-manifest';
export * from './knative';
export * from './test-image';
export * from './rollout';
