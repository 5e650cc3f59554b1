/** One node per catalog edit kind (and its variations), as the installer tests set them up. */
import * as fs from 'fs';
import * as path from 'path';
import { CommandResult } from '../../lib/installer/host/commands';
import { fixture, makeRoot } from './support';

export interface Scenario {
  readonly name: string;
  readonly target: string;
  readonly runtime: string;
  /** Host files on the node before install. */
  readonly files: Record<string, string>;
  /** Symlinks to create (host path → link text). */
  readonly links?: Record<string, string>;
  /** The host file install registers the handler in. */
  readonly edited: string;
  /** Text that must still be in the edited file after install (the original's content). */
  readonly keeps?: string;
  /** The unit restart must hit. */
  readonly unit: string;
  /** Answers of the fake host (e.g. which k3s unit exists). */
  readonly answer?: (argv: readonly string[]) => Partial<CommandResult> | undefined;
  /** Commands every install runs to learn about the node (the host's `crio --version` on CRI-O nodes). */
  readonly detects?: ReadonlyArray<readonly string[]>;
  /** Commands an install that changes the config runs before writing (the host runtime loading it). */
  readonly preflights?: ReadonlyArray<readonly string[]>;
  /** Lines the edited file must have, and lines it must not have, after install. */
  readonly has?: readonly string[];
  readonly lacks?: readonly string[];
  /** Lines `plan` must print (why the handler goes where it goes). */
  readonly notes?: readonly RegExp[];
}

const CRIO_VERSION_QUERY = ['nsenter', '-t', '1', '-m', '--', '/usr/bin/crio', '--version'];
const CRIO_PREFLIGHT = ['nsenter', '-t', '1', '-m', '--', '/usr/bin/crio', '--config', '/etc/crio/crio.conf', '--config-dir', '/run/knawd-preflight', 'config'];
/** Stands in for the host's crio binary: the installer finds it at its catalog path; its answers are canned. */
const CRIO_BINARY = { '/usr/bin/crio': '#!/bin/false stand-in for the host crio\n' };
/**
 * A host whose crio binary prints `output` for `crio --version`. Loading a config (`crio … config`, the
 * pre-flight) cannot be answered by a fake: that call fails to start here, and the pre-flight says it skipped
 * (the real CRI-O binaries judge real configs in test/e2e).
 */
const crioPrints = (output: string) => (argv: readonly string[]) =>
  argv.join(' ') === CRIO_VERSION_QUERY.join(' ') ? { stdout: output } : argv.includes('/usr/bin/crio') && argv.includes('config') ? { code: -1, stderr: 'no crio to run on this test node root' } : undefined;

const K3S = '/var/lib/rancher/k3s/agent/etc/containerd';
const RKE2 = '/var/lib/rancher/rke2/agent/etc/containerd';
const onlyUnit = (unit: string) => (argv: readonly string[]) =>
  argv.includes('cat') ? { code: argv[argv.length - 1] === unit ? 0 : 1, stderr: argv[argv.length - 1] === unit ? '' : 'No files found' } : undefined;

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'containerd config v2 (containerd 1.x)',
    target: 'ubuntu_22_04',
    runtime: 'crun-wasmtime',
    files: { '/etc/containerd/config.toml': fixture('containerd-1.6-systemd-cgroup.toml') },
    edited: '/etc/containerd/config.toml',
    keeps: fixture('containerd-1.6-systemd-cgroup.toml'),
    unit: 'containerd',
  },
  {
    name: 'containerd 2.2+ config importing conf.d (a drop-in; the config untouched)',
    target: 'containerd',
    runtime: 'crun-wasmedge',
    files: { '/etc/containerd/config.toml': fixture('containerd-2-default.toml') },
    edited: '/etc/containerd/conf.d/50-knawd-crun-wasm.toml',
    unit: 'containerd',
    has: ['version = 3', '[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.crun-wasm]'],
    notes: [/^note: drop-in: \/etc\/containerd\/config\.toml imports "\/etc\/containerd\/conf\.d\/\*\.toml", which containerd 2\.x merges into it: the handler goes into \/etc\/containerd\/conf\.d\/50-knawd-crun-wasm\.toml and \/etc\/containerd\/config\.toml is left as it is$/m],
  },
  {
    name: 'containerd config v3 without imports (containerd 2.0/2.1)',
    target: 'containerd',
    runtime: 'crun-wasmedge',
    files: { '/etc/containerd/config.toml': fixture('containerd-2-no-imports.toml') },
    edited: '/etc/containerd/config.toml',
    keeps: fixture('containerd-2-no-imports.toml'),
    unit: 'containerd',
    notes: [/^note: no drop-in: \/etc\/containerd\/config\.toml imports no other files$/m],
  },
  {
    name: 'containerd without a config file',
    target: 'ubuntu_20_04',
    runtime: 'crun-wasmedge',
    files: {},
    edited: '/etc/containerd/config.toml',
    unit: 'containerd',
    notes: [/^note: no drop-in: there is no \/etc\/containerd\/config\.toml \(without one containerd imports nothing\): it is created$/m],
  },
  {
    name: 'microk8s template behind the snap "current" symlink',
    target: 'microk8s',
    runtime: 'crun-wasmtime',
    files: { '/var/snap/microk8s/6089/args/containerd-template.toml': fixture('microk8s-containerd-template.toml') },
    links: { '/var/snap/microk8s/current': '6089' },
    edited: '/var/snap/microk8s/current/args/containerd-template.toml',
    keeps: fixture('microk8s-containerd-template.toml'),
    unit: 'snap.microk8s.daemon-containerd',
  },
  {
    name: 'k3s agent without a template (containerd 1.7)',
    target: 'k3s',
    runtime: 'crun-wasmtime',
    files: { [`${K3S}/config.toml`]: fixture('k3s-rendered-v2.toml') },
    edited: `${K3S}/config.toml.tmpl`,
    unit: 'k3s-agent',
    answer: onlyUnit('k3s-agent'),
  },
  {
    name: 'k3s server with a user template (containerd 2.x)',
    target: 'k3s',
    runtime: 'crun-wasmedge',
    files: { [`${K3S}/config.toml`]: fixture('k3s-rendered-v3.toml'), [`${K3S}/config-v3.toml.tmpl`]: fixture('k3s-config-v3.toml.tmpl') },
    edited: `${K3S}/config-v3.toml.tmpl`,
    keeps: fixture('k3s-config-v3.toml.tmpl'),
    unit: 'k3s',
    answer: onlyUnit('k3s'),
  },
  {
    name: 'k3s agent whose rendered config imports config-v3.toml.d (a drop-in; no template)',
    target: 'k3s',
    runtime: 'crun-wasmtime',
    files: { [`${K3S}/config.toml`]: fixture('k3s-rendered-v3-imports.toml') },
    edited: `${K3S}/config-v3.toml.d/50-knawd-crun-wasm.toml`,
    unit: 'k3s-agent',
    answer: onlyUnit('k3s-agent'),
    has: ['version = 3', '[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.crun-wasm]', '  SystemdCgroup = true'],
    notes: [/^note: drop-in: \/var\/lib\/rancher\/k3s\/agent\/etc\/containerd\/config\.toml imports "[^"]+\/config-v3\.toml\.d\/\*\.toml"/m],
  },
  {
    name: 'rke2 agent without a template (containerd 2.x)',
    target: 'rke2',
    runtime: 'crun-wasmtime',
    files: { [`${RKE2}/config.toml`]: fixture('k3s-rendered-v3.toml') },
    edited: `${RKE2}/config-v3.toml.tmpl`,
    unit: 'rke2-agent',
    answer: onlyUnit('rke2-agent'),
  },
  {
    name: 'CRI-O with a commented crio.conf and no drop-in directory',
    target: 'crio',
    runtime: 'crun-wasmedge',
    files: { '/etc/crio/crio.conf': fixture('crio.conf'), ...CRIO_BINARY },
    edited: '/etc/crio/crio.conf.d/50-knawd-crun-wasm.conf',
    unit: 'crio',
    // CRI-O 1.30+ output of `crio --version`: the release filters crun's annotations unless allowed.
    answer: crioPrints('crio version 1.36.3\n   GitCommit:      unknown\n   GoVersion:      go1.26.8\n'),
    detects: [CRIO_VERSION_QUERY],
    preflights: [CRIO_PREFLIGHT],
    has: ['  allowed_annotations = ["module.wasm.image/variant", "run.oci."]'],
  },
  {
    name: 'OpenShift CRI-O with existing drop-ins',
    target: 'rhel8_plugins',
    runtime: 'crun-wasmedge',
    files: {
      '/etc/crio/crio.conf': fixture('crio.conf'),
      '/etc/crio/crio.conf.d/00-default': '[crio.runtime]\nconmon_cgroup = "pod"\n',
      ...CRIO_BINARY,
    },
    edited: '/etc/crio/crio.conf.d/50-knawd-crun-wasm.conf',
    unit: 'crio',
    // The pre-1.30 output format; 1.28.5 lacks the CVE-2024-3154 fix and would drop a handler listing crun's keys.
    answer: crioPrints('crio version 1.28.5\nVersion:        1.28.5\nGitCommit:      abc\n'),
    detects: [CRIO_VERSION_QUERY],
    preflights: [CRIO_PREFLIGHT],
    // OpenShift's 00-default (no .conf) is read like CRI-O reads it: its conmon_cgroup wins over crio.conf's.
    has: ['  monitor_cgroup = "pod"'],
    lacks: ['allowed_annotations'],
  },
];

export function setUp(scenario: Scenario): string {
  const root = makeRoot(scenario.files);
  for (const [link, target] of Object.entries(scenario.links ?? {})) {
    fs.mkdirSync(path.dirname(path.join(root, link)), { recursive: true });
    fs.symlinkSync(target, path.join(root, link));
  }
  return root;
}
