/**
 * Nodes shaped like each distribution the catalog knows, for target detection: the host files each one has
 * where its packages put them (runtime config, binary, systemd unit, /etc/os-release) and the Node object its
 * kubelet reports (status.nodeInfo, the labels the distribution sets). The unit test judges them without a
 * cluster and with the Node as data; test/cluster creates the Node objects in a real kube-apiserver.
 *
 * Where the shapes come from: k3s's install script writes /etc/systemd/system/k3s.service or k3s-agent.service
 * and k3s renders /var/lib/rancher/k3s/agent/etc/containerd/config.toml at every start; rke2's tarball install
 * puts rke2-server.service under /usr/local/lib/systemd/system; the microk8s snap keeps
 * /var/snap/microk8s/current/args and labels its nodes microk8s.io/cluster=true; RHCOS ships CRI-O with
 * /etc/crio/crio.conf.d/00-default, and OpenShift labels nodes node.openshift.io/os_id; the kubelet marks its
 * version +k3s1 / +rke2r1 on k3s / rke2, and reports osImage from /etc/os-release.
 */
import { fixture } from './support';

export interface NodeInfoData {
  readonly containerRuntimeVersion: string;
  readonly kubeletVersion: string;
  readonly osImage: string;
}

export interface Distribution {
  readonly name: string;
  /** What `auto` must choose. */
  readonly target: string;
  /** The restart unit detection settles on. */
  readonly unit: string;
  /** The host file install registers the handler in. */
  readonly edited: string;
  readonly files: Record<string, string>;
  readonly links?: Record<string, string>;
  /** status.nodeInfo as its kubelet reports it. */
  readonly nodeInfo: NodeInfoData;
  /** Labels the distribution puts on its nodes. */
  readonly labels?: Record<string, string>;
  /** The containerd major the Node reports (containerd nodes). */
  readonly containerdMajor?: 1 | 2;
}

const unitFile = (what: string): string => `[Unit]\nDescription=${what}\n\n[Service]\nExecStart=/usr/bin/true\n`;
const osRelease = (pretty: string): string => `NAME="${pretty.split(' ')[0]}"\nPRETTY_NAME="${pretty}"\n`;
const K3S = '/var/lib/rancher/k3s/agent/etc/containerd';
const RKE2 = '/var/lib/rancher/rke2/agent/etc/containerd';

export const DISTRIBUTIONS: readonly Distribution[] = [
  {
    name: 'kubeadm on Ubuntu 22.04, containerd 1.7 from packages',
    target: 'containerd',
    unit: 'containerd',
    edited: '/etc/containerd/config.toml',
    files: {
      '/etc/containerd/config.toml': fixture('containerd-1.6-systemd-cgroup.toml'),
      '/lib/systemd/system/containerd.service': unitFile('containerd container runtime'),
      '/etc/os-release': osRelease('Ubuntu 22.04.4 LTS'),
    },
    nodeInfo: { containerRuntimeVersion: 'containerd://1.7.22', kubeletVersion: 'v1.30.4', osImage: 'Ubuntu 22.04.4 LTS' },
    containerdMajor: 1,
  },
  {
    name: 'kubeadm on Debian 12, containerd 2.x from the release tarball',
    target: 'containerd',
    unit: 'containerd',
    // containerd 2.2's default config imports conf.d: the handler goes into our drop-in there.
    edited: '/etc/containerd/conf.d/50-knawd-crun-wasm.toml',
    files: {
      '/etc/containerd/config.toml': fixture('containerd-2-default.toml'),
      '/usr/local/lib/systemd/system/containerd.service': unitFile('containerd container runtime'),
      '/etc/os-release': osRelease('Debian GNU/Linux 12 (bookworm)'),
    },
    nodeInfo: { containerRuntimeVersion: 'containerd://2.2.2', kubeletVersion: 'v1.32.1', osImage: 'Debian GNU/Linux 12 (bookworm)' },
    containerdMajor: 2,
  },
  {
    name: 'microk8s (snap)',
    target: 'microk8s',
    unit: 'snap.microk8s.daemon-containerd',
    edited: '/var/snap/microk8s/current/args/containerd-template.toml',
    files: {
      '/var/snap/microk8s/7394/args/containerd-template.toml': fixture('microk8s-containerd-template.toml'),
      '/etc/systemd/system/snap.microk8s.daemon-containerd.service': unitFile('Service for snap application microk8s.daemon-containerd'),
      '/etc/os-release': osRelease('Ubuntu 24.04.1 LTS'),
    },
    links: { '/var/snap/microk8s/current': '7394' },
    nodeInfo: { containerRuntimeVersion: 'containerd://1.6.28', kubeletVersion: 'v1.31.3', osImage: 'Ubuntu 24.04.1 LTS' },
    labels: { 'microk8s.io/cluster': 'true' },
    containerdMajor: 1,
  },
  {
    name: 'k3s server (containerd 1.7)',
    target: 'k3s',
    unit: 'k3s',
    edited: `${K3S}/config.toml.tmpl`,
    files: { [`${K3S}/config.toml`]: fixture('k3s-rendered-v2.toml'), '/etc/systemd/system/k3s.service': unitFile('Lightweight Kubernetes') },
    nodeInfo: { containerRuntimeVersion: 'containerd://1.7.22-k3s1', kubeletVersion: 'v1.30.6+k3s1', osImage: 'Ubuntu 22.04.4 LTS' },
    containerdMajor: 1,
  },
  {
    name: 'k3s agent (containerd 2.x)',
    target: 'k3s',
    unit: 'k3s-agent',
    edited: `${K3S}/config-v3.toml.tmpl`,
    files: { [`${K3S}/config.toml`]: fixture('k3s-rendered-v3.toml'), '/etc/systemd/system/k3s-agent.service': unitFile('Lightweight Kubernetes') },
    nodeInfo: { containerRuntimeVersion: 'containerd://2.0.4-k3s2', kubeletVersion: 'v1.32.3+k3s1', osImage: 'Debian GNU/Linux 12 (bookworm)' },
    containerdMajor: 2,
  },
  {
    name: 'rke2 server (containerd 1.7)',
    target: 'rke2',
    unit: 'rke2-server',
    edited: `${RKE2}/config.toml.tmpl`,
    files: { [`${RKE2}/config.toml`]: fixture('k3s-rendered-v2.toml'), '/usr/local/lib/systemd/system/rke2-server.service': unitFile('Rancher Kubernetes Engine v2 (server)') },
    nodeInfo: { containerRuntimeVersion: 'containerd://1.7.23-k3s2', kubeletVersion: 'v1.31.5+rke2r1', osImage: 'SUSE Linux Enterprise Server 15 SP6' },
    containerdMajor: 1,
  },
  {
    name: 'OpenShift worker on RHCOS (CRI-O)',
    target: 'rhel8',
    unit: 'crio',
    edited: '/etc/crio/crio.conf.d/50-knawd-crun-wasm.conf',
    files: {
      '/etc/crio/crio.conf': fixture('crio.conf'),
      '/etc/crio/crio.conf.d/00-default': '[crio.runtime]\nconmon_cgroup = "pod"\n',
      '/usr/lib/systemd/system/crio.service': unitFile('Container Runtime Interface for OCI (CRI-O)'),
      '/etc/os-release': osRelease('Red Hat Enterprise Linux CoreOS 416.94.202410211619-0'),
    },
    nodeInfo: { containerRuntimeVersion: 'cri-o://1.29.9-5.rhaos4.16.git7a0f0f9.el9', kubeletVersion: 'v1.29.9+5592cb7', osImage: 'Red Hat Enterprise Linux CoreOS 416.94.202410211619-0' },
    labels: { 'node.openshift.io/os_id': 'rhcos' },
  },
  {
    name: 'kubeadm on Debian 12 with CRI-O from packages',
    target: 'crio',
    unit: 'crio',
    edited: '/etc/crio/crio.conf.d/50-knawd-crun-wasm.conf',
    files: {
      '/etc/crio/crio.conf': fixture('crio.conf'),
      '/lib/systemd/system/crio.service': unitFile('Container Runtime Interface for OCI (CRI-O)'),
      '/etc/os-release': osRelease('Debian GNU/Linux 12 (bookworm)'),
    },
    nodeInfo: { containerRuntimeVersion: 'cri-o://1.31.1', kubeletVersion: 'v1.31.2', osImage: 'Debian GNU/Linux 12 (bookworm)' },
  },
];

export function distribution(name: string): Distribution {
  const d = DISTRIBUTIONS.find((x) => x.name.startsWith(name));
  if (!d) throw new Error(`no distribution "${name}"`);
  return d;
}
