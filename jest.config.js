/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': 'ts-jest' },
  moduleFileExtensions: ['ts', 'js', 'json'],
  testTimeout: 60000,
  // Most suites wait on real daemons (API servers, kubelets, runtime restarts), not on the CPU: on this 2-core
  // machine jest's default (cores - 1 = one worker) ran npm test in 19.7 min warm, three workers in 8.5 min,
  // green, with no suite sharing a port, netns or temp dir with another (freePort, owned temp dirs). With the
  // Kubernetes 1.35/1.37 matrix, the arm64, release and compile-cache suites, three workers kept the CPU 162% busy
  // of 200% for 10.9 min; a fourth fills the waits.
  maxWorkers: 4,
  // A directory of the run (KNAWD_RUN_DIR): the image build's warm check runs once per run, not once per suite
  // (demo/cluster/run-scope.ts).
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
};
