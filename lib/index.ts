export * from './catalog';
export * from './constructs';
