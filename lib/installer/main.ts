#!/usr/bin/env node
/**
 * The knawd-installer executable (and the esbuild bundle's entry). Only this file starts a run on load, so
 * importing `run` elsewhere never acts on the host by accident.
 */
import { isStopExitCode } from './host/signals';
import { processIo, run, stayIdle } from './run';

const argv = process.argv.slice(2);
void run(argv, process.env).then(async (code) => {
  // Stopped by a signal: waits the run gave up (the node lock, the API) must not keep the process alive.
  if (isStopExitCode(code)) process.exit(code);
  if (code === 0 && argv.includes('--stay') && !argv.includes('--help') && !argv.includes('-h')) await stayIdle(processIo.stdout);
  process.exitCode = code;
});
