/**
 * The target catalog: the one place that knows each kind of node this project configures. The constructs,
 * the chart renderer and the node installer all read it; none of them hard-codes a host path or a unit.
 */

/** The container runtime interface implementation a target runs. */
export type Cri = 'containerd' | 'crio';

/**
 * How the runtime's configuration is changed on a node of this target.
 * - `containerd-config`: our block is added in place to the containerd config file, keeping every other byte;
 *   where containerd 2.x reads the file and it imports a directory (2.2+'s default `conf.d/*.toml`), a drop-in
 *   of ours goes there instead and the file is left as it is.
 * - `containerd-template`: the config is rendered from a template at every start (k3s, rke2): we add our
 *   block to the user template (created from the base template when absent) and never touch the rendered file;
 *   where the rendered file imports a directory (`config-v3.toml.d/*.toml`, k3s#13680) and containerd 2.x reads
 *   it, a drop-in of ours goes there instead and no template is written.
 * - `crio-dropin`: a drop-in file of our own in the CRI-O drop-in directory; crio.conf is never touched.
 */
export type ConfigEdit =
  | {
      readonly kind: 'containerd-config';
      /** Host path of the file we edit. */
      readonly path: string;
      /** containerd major version assumed when the file is missing and the node does not report one. */
      readonly defaultContainerdMajor: 1 | 2;
    }
  | {
      readonly kind: 'containerd-template';
      /** Host directory of the rendered config and its templates. */
      readonly dir: string;
      /** Rendered file (read only, to detect handlers the distribution already renders). */
      readonly rendered: string;
      /** Template used by containerd 1.x based releases. */
      readonly template: string;
      /** Template used by containerd 2.x based releases. */
      readonly templateV3: string;
      readonly defaultContainerdMajor: 1 | 2;
    }
  | {
      readonly kind: 'crio-dropin';
      /** The main CRI-O config, read to copy the default runtime's monitor settings. */
      readonly mainConfig: string;
      /** Drop-in directory, applied in lexical order after the main file. */
      readonly dropInDir: string;
    };

/**
 * What marks a node as this target's kind beyond its CRI, for `auto` (which picks the target per node) and for
 * refusing a target that contradicts its node. Each field is evidence the node itself gives: its Node object
 * (kubelet version, labels, OS image) or its files.
 */
export interface NodeSignature {
  /**
   * Host paths where this distribution keeps its own runtime config: one of them exists on every node of this
   * kind. A node without any is not of this kind; another target of the same CRI is wrong on a node with one.
   */
  readonly ownPaths?: readonly string[];
  /**
   * The mark the distribution puts on the kubelet's version (`v1.31.4+k3s1` → `k3s`). A kubelet without it is
   * not this distribution's.
   */
  readonly kubeletSuffix?: string;
  /** Node label keys that only nodes of this kind carry (set by the distribution itself). */
  readonly nodeLabels?: readonly string[];
  /**
   * Start of the OS name of the nodes this target is for (the Node's osImage, which the kubelet takes from the
   * host's /etc/os-release PRETTY_NAME): `auto` takes it as evidence for this target; an explicit target on
   * another OS is only a warning, the runtime's files being where they are on any OS.
   */
  readonly osImage?: string;
}

export interface TargetSpec {
  /** Name accepted in values, props, env (VENDOR) and on the installer command line. */
  readonly name: string;
  /** One line for humans: what this target is. */
  readonly description: string;
  readonly cri: Cri;
  readonly configEdit: ConfigEdit;
  /**
   * systemd units that run the CRI; the first one that exists on the node is restarted. Several entries mean
   * the unit depends on the node's role (k3s server vs agent).
   */
  readonly restartUnits: readonly string[];
  /** Host path of the CRI socket, polled after a restart until the runtime answers. */
  readonly criSocket: string;
  /**
   * Host paths of the runtime's own binary, tried in order: it reports the version and, before anything is
   * written, loads the candidate config (containerd `config dump`, `crio config`). Empty where no binary can
   * judge the file we edit (a k3s/rke2 template is rendered by k3s at start): the check after the restart
   * remains.
   */
  readonly runtimeBinaries: readonly string[];
  /** OpenShift clusters need a SecurityContextConstraints for the privileged agent. */
  readonly openshift: boolean;
  /** Platforms for the support matrix. */
  readonly platforms: string;
  /** What marks a node as this kind (none: any node of the CRI). */
  readonly signature: NodeSignature;
}

const CONTAINERD_CONFIG = '/etc/containerd/config.toml';
const CONTAINERD_SOCKET = '/run/containerd/containerd.sock';
const CONTAINERD_BINARIES = ['/usr/bin/containerd', '/usr/local/bin/containerd'];
const CRIO_BINARIES = ['/usr/bin/crio', '/usr/local/bin/crio'];

function plainContainerd(name: string, description: string, platforms: string, osImage?: string): TargetSpec {
  return {
    name,
    description,
    cri: 'containerd',
    configEdit: { kind: 'containerd-config', path: CONTAINERD_CONFIG, defaultContainerdMajor: 1 },
    restartUnits: ['containerd'],
    criSocket: CONTAINERD_SOCKET,
    runtimeBinaries: CONTAINERD_BINARIES,
    openshift: false,
    platforms,
    signature: osImage === undefined ? {} : { osImage },
  };
}

/**
 * OpenShift's Machine Config Daemon labels every node with its OS (`rhcos`, `rhel`, `scos`); RHCOS names itself
 * "Red Hat Enterprise Linux CoreOS <version>" in /etc/os-release.
 */
const OPENSHIFT_SIGNATURE: NodeSignature = { nodeLabels: ['node.openshift.io/os_id'], osImage: 'Red Hat Enterprise Linux CoreOS' };

function openshiftCrio(name: string, description: string): TargetSpec {
  return {
    name,
    description,
    cri: 'crio',
    configEdit: { kind: 'crio-dropin', mainConfig: '/etc/crio/crio.conf', dropInDir: '/etc/crio/crio.conf.d' },
    restartUnits: ['crio'],
    criSocket: '/var/run/crio/crio.sock',
    runtimeBinaries: CRIO_BINARIES,
    openshift: true,
    platforms: 'OpenShift 4.10, 4.11 (RHCOS, CRI-O)',
    signature: OPENSHIFT_SIGNATURE,
  };
}

function rancherContainerd(name: 'k3s' | 'rke2', units: readonly string[], platforms: string): TargetSpec {
  const dir = `/var/lib/rancher/${name}/agent/etc/containerd`;
  return {
    name,
    description: `${name} nodes; the containerd config is rendered from config.toml.tmpl / config-v3.toml.tmpl`,
    cri: 'containerd',
    configEdit: {
      kind: 'containerd-template',
      dir,
      rendered: `${dir}/config.toml`,
      template: `${dir}/config.toml.tmpl`,
      templateV3: `${dir}/config-v3.toml.tmpl`,
      defaultContainerdMajor: 1,
    },
    restartUnits: units,
    criSocket: '/run/k3s/containerd/containerd.sock',
    runtimeBinaries: [],
    openshift: false,
    platforms,
    // k3s renders config.toml into its agent directory at every start (rke2 is built on k3s: same layout); both
    // mark their kubelet's version: v1.31.4+k3s1, v1.31.4+rke2r1.
    signature: { ownPaths: [dir], kubeletSuffix: name },
  };
}

export const TARGETS = [
  plainContainerd('ubuntu_18_04', 'Ubuntu 18.04 with containerd', 'Ubuntu 18.04', 'Ubuntu 18.04'),
  plainContainerd('ubuntu_20_04', 'Ubuntu 20.04 with containerd', 'Ubuntu 20.04', 'Ubuntu 20.04'),
  plainContainerd('ubuntu_22_04', 'Ubuntu 22.04 with containerd', 'Ubuntu 22.04', 'Ubuntu 22.04'),
  plainContainerd('ubuntu_24_04', 'Ubuntu 24.04 with containerd', 'Ubuntu 24.04', 'Ubuntu 24.04'),
  openshiftCrio('rhel8', 'OpenShift 4.10/4.11 on RHCOS with CRI-O'),
  openshiftCrio('rhel8_plugins', 'OpenShift with CRI-O and the WasmEdge build that carries plugins'),
  {
    name: 'microk8s',
    description: 'microk8s; its containerd config is rendered from args/containerd-template.toml',
    cri: 'containerd',
    configEdit: {
      kind: 'containerd-config',
      path: '/var/snap/microk8s/current/args/containerd-template.toml',
      defaultContainerdMajor: 1,
    },
    restartUnits: ['snap.microk8s.daemon-containerd'],
    criSocket: '/var/snap/microk8s/common/run/containerd.sock',
    runtimeBinaries: ['/snap/microk8s/current/bin/containerd'],
    openshift: false,
    platforms: 'microk8s 1.26+',
    // The snap's args directory holds the template its containerd is started from; microk8s labels its nodes.
    signature: { ownPaths: ['/var/snap/microk8s/current/args/containerd-template.toml'], nodeLabels: ['microk8s.io/cluster'] },
  },
  rancherContainerd('k3s', ['k3s', 'k3s-agent'], 'k3s (containerd 1.7 and 2.x releases)'),
  rancherContainerd('rke2', ['rke2-server', 'rke2-agent'], 'RKE2 (containerd 1.7 and 2.x releases)'),
  plainContainerd('containerd', 'Any Linux node with containerd 1.x or 2.x at /etc/containerd/config.toml', 'generic containerd 1.x / 2.x'),
  {
    name: 'crio',
    description: 'Any Linux node with CRI-O (drop-in directory /etc/crio/crio.conf.d)',
    cri: 'crio',
    configEdit: { kind: 'crio-dropin', mainConfig: '/etc/crio/crio.conf', dropInDir: '/etc/crio/crio.conf.d' },
    restartUnits: ['crio'],
    criSocket: '/var/run/crio/crio.sock',
    runtimeBinaries: CRIO_BINARIES,
    openshift: false,
    platforms: 'generic CRI-O 1.18+',
    signature: {},
  },
] as const satisfies readonly TargetSpec[];

export type TargetName = (typeof TARGETS)[number]['name'];

export const TARGET_NAMES: readonly TargetName[] = TARGETS.map((t) => t.name);

/** Targets whose clusters are OpenShift (the chart renderer derives its helper from this list). */
export const OPENSHIFT_TARGETS: readonly TargetName[] = TARGETS.filter((t) => t.openshift).map((t) => t.name);

/** The API group/version of OpenShift's SecurityContextConstraints: the chart asks `.Capabilities` for it (target auto). */
export const OPENSHIFT_SECURITY_API = 'security.openshift.io/v1';
