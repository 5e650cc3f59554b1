/**
 * Command line and environment → {@link Settings}. Flags win over env; env names are those of the original
 * knawd deployer (VENDOR, OCI_TYPE, NODE_ROOT, AUTO_RESTART, LOG_LEVEL, PATCH_KNATIVE) plus KNAWD_PREFIX,
 * KNAWD_HANDLER, KNAWD_RUNTIME_CLASS, KNAWD_KNATIVE_RUNTIME_CLASS_SELECTOR, KNAWD_ARTIFACTS, NODE_NAME and
 * KUBECONFIG. Any bad value is a {@link UsageError}.
 */
import * as path from 'path';
import {
  DEFAULT_ARTIFACTS_DIR,
  DEFAULT_HANDLER,
  DEFAULT_PATCH_KNATIVE,
  DEFAULT_RUNTIME_CLASS,
  PATCH_KNATIVE_MODES,
  PatchKnativeMode,
  parseSelector,
  SELECTOR_RULE,
  selectorProblem,
  AUTO_TARGET,
  DEFAULT_HOST_PREFIX,
  findRuntime,
  findTargetChoice,
  HANDLER_RULE,
  HOST_PREFIX_MAX_LENGTH,
  HOST_PREFIX_RULE,
  HOST_CHANGED_LABEL,
  INSTALLER_ENV,
  INSTALLER_GRACE_SECONDS,
  InvalidVariantError,
  isHandlerName,
  isHostPrefix,
  LOG_LEVELS,
  LogLevel,
  NODE_ROOT_MOUNT,
  DEFAULT_INSTALLER_NAMESPACE,
  DEFAULT_RESTART_LEASE_SECONDS,
  DRIFT_CHECK_FLAG,
  isSlotCount,
  parseTaint,
  RESTART_LEASE_PREFIX,
  SLOT_COUNT_RULE,
  StartupTaint,
  TAINT_RULE,
  resolveChoice,
} from '../catalog';
import { UsageError } from './errors';
import { NODE_LOCK } from './host/lock';
import { Command, COMMANDS, HostExec, RestartMode, Settings } from './settings';

export const USAGE = `Usage: knawd-installer <command> [flags]

Commands:
  plan           print a unified diff of every host file install would change, and whether the runtime
                 would be restarted; changes nothing
  install        verify the artifacts, install crun + engine under the prefix, register the handler,
                 restart the runtime when its config changed, label the node
  remove         revert everything install did (byte-identical configs, files and directories removed),
                 restart when needed, unlabel the node; safe to run twice
  status         report what is installed; exit 0 installed and consistent, 1 not installed, 3 drifted;
                 with --cluster one line per node of the cluster (target, runtime, state, since, reason),
                 exit 1 while any node is pending or failed
  wait-removed   wait until every node is restored: no node carries the host-changed label (the uninstall Job)

Flags (environment fallback in brackets; flags win):
  --node-root DIR             where the host's / is mounted [NODE_ROOT] (default ${NODE_ROOT_MOUNT})
  --target T                  node target from the catalog, or auto: what the node is, from its Node object
                              and its files (plan shows what was found and why) [VENDOR] (default auto);
                              a target the node contradicts is refused before anything is written
  --runtime R                 crun build: crun-wasmedge | crun-wasmtime | crun-wasm-nodejs [OCI_TYPE]
  --artifacts DIR             artifacts root: <DIR>/artifacts.json, <DIR>/SHA256SUMS and the builds they list
                              [KNAWD_ARTIFACTS] (default ${DEFAULT_ARTIFACTS_DIR})
  --prefix DIR                host directory everything is installed under, at most ${HOST_PREFIX_MAX_LENGTH} characters
                              [KNAWD_PREFIX] (default ${DEFAULT_HOST_PREFIX})
  --handler NAME              CRI runtime handler name [KNAWD_HANDLER] (default ${DEFAULT_HANDLER})
  --restart auto|none         restart the runtime after a config change [AUTO_RESTART=true|false] (default auto)
  --start-stopped-runtime     restart it even when it was not running before the run (nothing answered on its
                              socket), which starts it [KNAWD_START_STOPPED_RUNTIME=true|false]; without it a
                              stopped runtime stays stopped: it reads the new config when it is started, and
                              install runs again then to verify it and label the node
  --host-exec nsenter|chroot  how host commands run: in PID 1's mount namespace (a node; needs hostPID), or
                              chrooted into --node-root (a node root that is not this host's: an image, a test)
                              [KNAWD_HOST_EXEC] (default nsenter)
  --patch-knative auto|true|false
                              wire Knative Serving up (its runtimeClassName feature flag): auto where it is
                              installed, true always, false never [PATCH_KNATIVE] (default auto)
  --runtime-class NAME        the RuntimeClass of the handler [KNAWD_RUNTIME_CLASS] (default ${DEFAULT_RUNTIME_CLASS})
  --knative-runtime-class-selector KEY=VALUE[,KEY=VALUE...]
                              make that RuntimeClass Knative's default for revisions with these labels
                              (config-deployment runtime-class-name) [KNAWD_KNATIVE_RUNTIME_CLASS_SELECTOR]
                              (default: none, config-deployment is left alone)
  --log-level L               ${LOG_LEVELS.join(' | ')} [LOG_LEVEL] (default info)
  --node-name NAME            this node, for the installed label [NODE_NAME]
  --kubeconfig FILE           kubeconfig for the API steps [KUBECONFIG] (default: in-cluster config if any)
  --stay                      after success, stay idle until SIGTERM; SIGTERM changes nothing
  --max-concurrent-restarts K install/remove: restart the runtime only holding one of K slots, the Leases
                              ${RESTART_LEASE_PREFIX}0 … K-1 in --namespace, shared by every node
                              [KNAWD_MAX_CONCURRENT_RESTARTS] (default: no budget, restarts are not coordinated)
  --namespace NS              the installer's namespace, where those Leases are [KNAWD_NAMESPACE]
                              (default ${DEFAULT_INSTALLER_NAMESPACE})
  --restart-lease-seconds N   a slot whose holder stopped renewing is free after N seconds (default ${DEFAULT_RESTART_LEASE_SECONDS})
  --ready-file FILE           install: a file that exists exactly while this node is installed and verified
                              (the pod's readiness probe) [KNAWD_READY_FILE] (default: none)
  --startup-taint KEY:EFFECT
                              install: remove this taint from the node once it is installed
                              [KNAWD_STARTUP_TAINT] (default: none)
  ${DRIFT_CHECK_FLAG}               install: re-check the node (our config block, our files, the handler served by
                              the runtime, the node's label); change nothing unless it drifted, else log it,
                              record an Event, go to pending and repair it like install
  --cluster                   status: every node of the cluster, from the API (needs --kubeconfig or in-cluster)
  --socket-timeout-seconds N  bound on the wait for the CRI socket after a restart (default 60)
  --pods-timeout-seconds N    remove: bound on the wait until no pod on this node runs with the handler
                              (default 120); remove refuses while such pods remain
  --lock-timeout-seconds N    install/remove: bound on the wait for another run on this node to finish
                              (default 300; the lock is ${NODE_LOCK} on the host)
  --grace-seconds N           install/remove: after SIGTERM or SIGINT, time the step in progress may still take
                              (it is finished or rolled back, then the run stops; default ${INSTALLER_GRACE_SECONDS}; keep it
                              below the pod's terminationGracePeriodSeconds) [KNAWD_GRACE_SECONDS]
  --timeout-seconds N         wait-removed: give up after N seconds (default 240)
  --label KEY=VALUE           wait-removed: wait until no node carries this label
                              (default ${HOST_CHANGED_LABEL.key}=${HOST_CHANGED_LABEL.value}: the host is not restored yet)
  -h, --help                  this text

Exit status: 0 success; 1 failure (the message says what to do); 2 bad command line or environment;
3 status: installed but drifted from what was written; 143 / 130 stopped by SIGTERM / SIGINT (the message
says what the node is left as; running the command again completes it).`;

type Env = Readonly<Record<string, string | undefined>>;

const VALUE_FLAGS = [
  'node-root',
  'target',
  'runtime',
  'artifacts',
  'prefix',
  'handler',
  'restart',
  'host-exec',
  'patch-knative',
  'runtime-class',
  'knative-runtime-class-selector',
  'log-level',
  'node-name',
  'kubeconfig',
  'socket-timeout-seconds',
  'pods-timeout-seconds',
  'lock-timeout-seconds',
  'grace-seconds',
  'timeout-seconds',
  'label',
  'max-concurrent-restarts',
  'namespace',
  'restart-lease-seconds',
  'ready-file',
  'startup-taint',
] as const;
type ValueFlag = (typeof VALUE_FLAGS)[number];

const SWITCHES = ['stay', DRIFT_CHECK_FLAG.slice(2), 'cluster'] as const;
type Switch = (typeof SWITCHES)[number];

/** Result of parsing: either the settings of a run, or a request for the usage text. */
export type ParseResult = { readonly help: true } | { readonly help: false; readonly settings: Settings };

export function parseCommandLine(argv: readonly string[], env: Env): ParseResult {
  const flags = new Map<ValueFlag, string>();
  const switches = new Set<Switch>();
  let startStopped: boolean | undefined;
  let command: Command | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help' || arg === 'help') return { help: true };
    if ((SWITCHES as readonly string[]).includes(arg.slice(2)) && arg.startsWith('--')) {
      switches.add(arg.slice(2) as Switch);
      continue;
    }
    if (arg === '--start-stopped-runtime') {
      startStopped = true;
      continue;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = arg.slice(2, eq < 0 ? undefined : eq);
      if (!(VALUE_FLAGS as readonly string[]).includes(name)) throw new UsageError(`unknown flag --${name}`);
      let value: string | undefined;
      if (eq >= 0) value = arg.slice(eq + 1);
      else {
        value = argv[++i];
        if (value === undefined) throw new UsageError(`flag --${name} needs a value`);
      }
      flags.set(name as ValueFlag, value);
      continue;
    }
    if (command !== undefined) throw new UsageError(`unexpected argument "${arg}" (command is already "${command}")`);
    if (!(COMMANDS as readonly string[]).includes(arg)) {
      throw new UsageError(`unknown command "${arg}"; valid commands: ${COMMANDS.join(', ')}`);
    }
    command = arg as Command;
  }
  if (command === undefined) throw new UsageError(`no command given; valid commands: ${COMMANDS.join(', ')}`);

  const pick = (flag: ValueFlag, envName?: string): string | undefined => {
    const value = flags.get(flag) ?? (envName === undefined ? undefined : env[envName]);
    return value === undefined || value === '' ? undefined : value;
  };

  const needsVariant = command === 'plan' || command === 'install';
  const targetName = pick('target', INSTALLER_ENV.target) ?? (needsVariant ? AUTO_TARGET : undefined);
  const runtimeName = pick('runtime', INSTALLER_ENV.runtime);
  if (needsVariant && runtimeName === undefined) {
    throw new UsageError(`${command} needs --runtime (or ${INSTALLER_ENV.runtime})`);
  }
  let target: Settings['target'];
  let runtime: Settings['runtime'];
  try {
    if (targetName !== undefined && runtimeName !== undefined) {
      ({ target, runtime } = resolveChoice(targetName, runtimeName));
    } else {
      target = targetName === undefined ? undefined : findTargetChoice(targetName);
      runtime = runtimeName === undefined ? undefined : findRuntime(runtimeName);
    }
  } catch (error) {
    if (error instanceof InvalidVariantError) throw new UsageError(error.message);
    throw error;
  }

  const nodeRoot = path.resolve(pick('node-root', INSTALLER_ENV.nodeRoot) ?? NODE_ROOT_MOUNT);
  const prefix = hostDirectory(pick('prefix', INSTALLER_ENV.prefix) ?? DEFAULT_HOST_PREFIX, 'prefix');
  const handler = pick('handler', INSTALLER_ENV.handler) ?? DEFAULT_HANDLER;
  if (!isHandlerName(handler)) {
    throw new UsageError(`invalid handler "${handler}": use ${HANDLER_RULE}`);
  }

  return {
    help: false,
    settings: {
      command,
      nodeRoot,
      target,
      runtime,
      artifacts: path.resolve(pick('artifacts', INSTALLER_ENV.artifacts) ?? DEFAULT_ARTIFACTS_DIR),
      prefix,
      handler,
      restart: restartMode(flags.get('restart'), env[INSTALLER_ENV.autoRestart]),
      startStoppedRuntime: startStopped ?? booleanValue(env[INSTALLER_ENV.startStoppedRuntime] || undefined, INSTALLER_ENV.startStoppedRuntime, false),
      graceSeconds: seconds(pick('grace-seconds', INSTALLER_ENV.graceSeconds), '--grace-seconds', INSTALLER_GRACE_SECONDS),
      hostExec: hostExec(pick('host-exec', INSTALLER_ENV.hostExec)),
      ...knativeSettings(pick('patch-knative', INSTALLER_ENV.patchKnative), pick('runtime-class', INSTALLER_ENV.runtimeClass), pick('knative-runtime-class-selector', INSTALLER_ENV.knativeRuntimeClassSelector)),
      logLevel: logLevel(pick('log-level', INSTALLER_ENV.logLevel)),
      nodeName: pick('node-name', INSTALLER_ENV.nodeName),
      kubeconfig: pick('kubeconfig', 'KUBECONFIG'),
      stay: switches.has('stay'),
      timeoutSeconds: seconds(pick('timeout-seconds'), '--timeout-seconds', 240),
      socketTimeoutSeconds: seconds(pick('socket-timeout-seconds'), '--socket-timeout-seconds', 60),
      podsTimeoutSeconds: seconds(pick('pods-timeout-seconds'), '--pods-timeout-seconds', 120),
      lockTimeoutSeconds: seconds(pick('lock-timeout-seconds'), '--lock-timeout-seconds', 300),
      label: label(pick('label')),
      namespace: namespace(pick('namespace', INSTALLER_ENV.namespace)),
      maxConcurrentRestarts: slots(pick('max-concurrent-restarts', INSTALLER_ENV.maxConcurrentRestarts)),
      restartLeaseSeconds: seconds(pick('restart-lease-seconds'), '--restart-lease-seconds', DEFAULT_RESTART_LEASE_SECONDS),
      readyFile: readyFile(pick('ready-file', INSTALLER_ENV.readyFile)),
      startupTaint: startupTaint(pick('startup-taint', INSTALLER_ENV.startupTaint)),
      driftCheck: onlyFor(command, 'install', switches.has(DRIFT_CHECK_FLAG.slice(2) as Switch), DRIFT_CHECK_FLAG),
      cluster: onlyFor(command, 'status', switches.has('cluster'), '--cluster'),
    },
  };
}

function onlyFor(command: Command, wanted: Command, on: boolean, flag: string): boolean {
  if (on && command !== wanted) throw new UsageError(`${flag} is a flag of ${wanted}, not of ${command}`);
  return on;
}

function namespace(value: string | undefined): string {
  if (value === undefined) return DEFAULT_INSTALLER_NAMESPACE;
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(value) || value.length > 63) {
    throw new UsageError(`invalid --namespace / ${INSTALLER_ENV.namespace} "${value}": use a DNS label such as ${DEFAULT_INSTALLER_NAMESPACE}`);
  }
  return value;
}

function slots(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!isSlotCount(n)) throw new UsageError(`invalid --max-concurrent-restarts / ${INSTALLER_ENV.maxConcurrentRestarts} "${value}": use ${SLOT_COUNT_RULE}`);
  return n;
}

function readyFile(value: string | undefined): string | undefined {
  if (value !== undefined && !path.isAbsolute(value)) throw new UsageError(`invalid --ready-file / ${INSTALLER_ENV.readyFile} "${value}": use an absolute path`);
  return value;
}

function startupTaint(value: string | undefined): StartupTaint | undefined {
  if (value === undefined) return undefined;
  const taint = parseTaint(value);
  if (!taint) throw new UsageError(`invalid --startup-taint / ${INSTALLER_ENV.startupTaint} "${value}": use ${TAINT_RULE}`);
  return taint;
}

function knativeSettings(mode: string | undefined, runtimeClass: string | undefined, selectorText: string | undefined): Pick<Settings, 'patchKnative' | 'runtimeClassName' | 'knativeRuntimeClassSelector'> {
  const patchKnative = (mode ?? DEFAULT_PATCH_KNATIVE).trim().toLowerCase();
  if (!(PATCH_KNATIVE_MODES as readonly string[]).includes(patchKnative)) {
    throw new UsageError(`invalid --patch-knative / ${INSTALLER_ENV.patchKnative} "${mode}": use ${PATCH_KNATIVE_MODES.join(', ')}`);
  }
  const runtimeClassName = runtimeClass ?? DEFAULT_RUNTIME_CLASS;
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(runtimeClassName) || runtimeClassName.length > 253) {
    throw new UsageError(`invalid --runtime-class / ${INSTALLER_ENV.runtimeClass} "${runtimeClassName}": use a DNS subdomain name such as ${DEFAULT_RUNTIME_CLASS}`);
  }
  if (selectorText === undefined) return { patchKnative: patchKnative as PatchKnativeMode, runtimeClassName };
  const what = `--knative-runtime-class-selector / ${INSTALLER_ENV.knativeRuntimeClassSelector}`;
  const selector = parseSelector(selectorText);
  const problem = selector ? selectorProblem(selector) : 'it is not KEY=VALUE[,KEY=VALUE...] with distinct keys';
  if (!selector || problem) throw new UsageError(`invalid ${what} "${selectorText}" (${problem}): use ${SELECTOR_RULE}`);
  if (patchKnative === 'false') throw new UsageError(`${what} needs --patch-knative auto or true: false leaves Knative alone`);
  return { patchKnative: patchKnative as PatchKnativeMode, runtimeClassName, knativeRuntimeClassSelector: selector };
}

function restartMode(flag: string | undefined, autoRestart: string | undefined): RestartMode {
  if (flag !== undefined) {
    if (flag === 'auto' || flag === 'none') return flag;
    throw new UsageError(`invalid --restart "${flag}": use auto or none`);
  }
  if (autoRestart === undefined || autoRestart === '') return 'auto';
  return booleanValue(autoRestart, `${INSTALLER_ENV.autoRestart}`, true) ? 'auto' : 'none';
}

function hostExec(value: string | undefined): HostExec {
  if (value === undefined || value === 'nsenter' || value === 'chroot') return value ?? 'nsenter';
  throw new UsageError(`invalid --host-exec "${value}": use nsenter or chroot`);
}

function booleanValue(value: string | undefined, what: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  const v = value.trim().toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new UsageError(`invalid ${what} "${value}": use true or false`);
}

function logLevel(value: string | undefined): LogLevel {
  if (value === undefined) return 'info';
  const v = value.trim().toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(v)) return v as LogLevel;
  throw new UsageError(`invalid log level "${value}": use ${LOG_LEVELS.join(', ')}`);
}

function seconds(value: string | undefined, what: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 86400) {
    throw new UsageError(`invalid ${what} "${value}": use a whole number of seconds between 1 and 86400`);
  }
  return Number(value);
}

function label(value: string | undefined): string {
  if (value === undefined) return `${HOST_CHANGED_LABEL.key}=${HOST_CHANGED_LABEL.value}`;
  if (!/^[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*$/.test(value)) {
    throw new UsageError(`invalid --label "${value}": use KEY=VALUE, e.g. ${HOST_CHANGED_LABEL.key}=${HOST_CHANGED_LABEL.value}`);
  }
  return value;
}

function hostDirectory(value: string, what: string): string {
  if (!isHostPrefix(value)) throw new UsageError(`invalid --${what} "${value}": use ${HOST_PREFIX_RULE}`);
  return value;
}
