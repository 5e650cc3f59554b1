/**
 * Target detection over node roots shaped like each distribution (test/installer/distributions.ts): what `auto`
 * chooses, with the Node object (as data: the real API server's Node objects are test/cluster/auto-target.test.ts)
 * and from the node's files alone; an install with `auto` on each, restored by remove; and every explicit target
 * that contradicts its node refused before any write, nothing changed and nothing run.
 */
import * as fs from 'fs';
import * as path from 'path';
import { findRuntime, findTarget } from '../../lib/catalog';
import { planCommand } from '../../lib/installer/commands/plan';
import { HostFs } from '../../lib/installer/host/fs';
import { install, remove } from '../../lib/installer/installer';
import { NodeInfo } from '../../lib/installer/kube/cluster';
import { decideTarget, gatherEvidence, NodeEvidence, TargetMismatchError } from '../../lib/installer/runtime/detect-target';
import { Distribution, distribution, DISTRIBUTIONS } from './distributions';
import { effectsFor, fixture, makeArtifacts, makeRoot, RESTART, settingsFor, snapshot } from './support';

const WASMTIME = findRuntime('crun-wasmtime');

function rootOf(files: Record<string, string>, links: Record<string, string> = {}): string {
  const root = makeRoot(files);
  for (const [link, target] of Object.entries(links)) {
    fs.mkdirSync(path.dirname(path.join(root, link)), { recursive: true });
    fs.symlinkSync(target, path.join(root, link));
  }
  return root;
}

const nodeOf = (d: Distribution): NodeInfo => ({ labels: d.labels ?? {}, ...d.nodeInfo });

function evidence(d: Distribution, withNode = true): NodeEvidence {
  return gatherEvidence(new HostFs(rootOf(d.files, d.links)), withNode ? nodeOf(d) : undefined, 'node-1');
}

/** The mismatch message of a decision, or undefined when it was not refused. */
function refusal(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    if (!(error instanceof TargetMismatchError)) throw error;
    return error.message;
  }
}

describe.each(DISTRIBUTIONS)('auto on $name', (d) => {
  test('the Node object and the files give the target, the CRI and the restart unit, and say why', () => {
    const decision = decideTarget('auto', WASMTIME, evidence(d));
    expect(decision.auto).toBe(true);
    expect(decision.target).toMatchObject({ name: d.target, cri: findTarget(d.target).cri, restartUnits: [d.unit] });
    expect(decision.evidence[0]).toBe(
      `node object: runtime ${d.nodeInfo.containerRuntimeVersion}, kubelet ${d.nodeInfo.kubeletVersion}, OS ${d.nodeInfo.osImage}${Object.entries(d.labels ?? {}).map(([k, v]) => `, label ${k}=${v}`).join('')}`,
    );
    expect(decision.evidence).toContainEqual(expect.stringMatching(new RegExp(`^target ${d.target}: `)));
    expect(decision.evidence).toContainEqual(expect.stringMatching(new RegExp(`^restart unit: ${d.unit.replace(/\./g, '\\.')} \\(/`)));
    expect(decision.warnings).toEqual([]);
  });

  test('without the Node object, the files alone give the same target', () => {
    const decision = decideTarget('auto', WASMTIME, evidence(d, false));
    expect(decision.target.name).toBe(d.target);
    expect(decision.evidence[0]).toBe('node object: not read (no cluster or node name): the node files alone decide');
  });

  test('install with auto registers the handler there and restarts the unit; plan says what it found; remove restores the node', async () => {
    const root = rootOf(d.files, d.links);
    const before = snapshot(root);
    const artifacts = makeArtifacts(d.target);
    const args = (command: string) => [command, '--node-root', root, '--target', 'auto', '--runtime', WASMTIME.name, '--artifacts', artifacts];

    const planned = await planCommand(settingsFor(args('plan')), effectsFor(root));
    const detected = planned.text.split('\n').filter((l) => l.startsWith('detected: '));
    expect(detected).toContainEqual(expect.stringMatching(new RegExp(`^detected: target ${d.target}: `)));
    expect(detected).toContainEqual(`detected: config: ${d.edited}`);
    expect(detected).toContainEqual(expect.stringMatching(new RegExp(`^detected: restart unit: ${d.unit.replace(/\./g, '\\.')} `)));
    expect(snapshot(root)).toEqual(before);

    const effects = effectsFor(root);
    const report = await install(settingsFor(args('install')), effects);
    expect(report.restarts).toBe(1);
    // The unit file settled the unit: systemctl is not asked which exists.
    expect(effects.runner.calls.filter((c) => c.includes('systemctl'))).toEqual([RESTART(d.unit)]);
    expect(fs.readFileSync(effects.fs.local(d.edited), 'utf8')).toContain(`/opt/knawd/bin/${WASMTIME.name}`);
    expect(JSON.parse(fs.readFileSync(path.join(root, 'opt/knawd/state.json'), 'utf8')).target).toBe(d.target);
    expect(effects.log.records).toContainEqual(expect.objectContaining({ level: 'info', msg: `target ${d.target} (auto)` }));

    await remove(settingsFor(['remove', '--node-root', root, '--target', 'auto', '--artifacts', artifacts]), effectsFor(root));
    expect(snapshot(root)).toEqual(before);
  });
});

describe('what auto makes of harder nodes', () => {
  const kubeadm = distribution('kubeadm on Ubuntu');
  const k3sAgent = distribution('k3s agent');
  const crio = distribution('kubeadm on Debian 12 with CRI-O');

  test('a k3s directory left on a kubeadm node: the kubelet has no +k3s, so it is plain containerd, and it says why not k3s', () => {
    const e = gatherEvidence(new HostFs(rootOf({ ...kubeadm.files, ...k3sAgent.files })), nodeOf(kubeadm), 'node-1');
    const decision = decideTarget('auto', WASMTIME, e);
    expect(decision.target.name).toBe('containerd');
    expect(decision.evidence).toContain("not k3s: the kubelet is v1.30.4, not k3s's (+k3s…)");
  });

  test('k3s run against another containerd (--container-runtime-endpoint): no agent config, so plain containerd', () => {
    const e = gatherEvidence(new HostFs(rootOf(kubeadm.files)), { ...nodeOf(kubeadm), kubeletVersion: 'v1.30.6+k3s1' }, 'node-1');
    expect(decideTarget('auto', WASMTIME, e).target.name).toBe('containerd');
  });

  test('containerd and CRI-O both on the node: the Node object tells; without it, auto refuses', () => {
    const both = { ...kubeadm.files, ...crio.files };
    expect(decideTarget('auto', WASMTIME, gatherEvidence(new HostFs(rootOf(both)), nodeOf(crio), 'node-1')).target.name).toBe('crio');
    expect(decideTarget('auto', WASMTIME, gatherEvidence(new HostFs(rootOf(both)), nodeOf(kubeadm), 'node-1')).target.name).toBe('containerd');
    expect(refusal(() => decideTarget('auto', WASMTIME, gatherEvidence(new HostFs(rootOf(both)), undefined, 'node-1')))).toMatch(
      /^target auto cannot tell which runtime node node-1's kubelet uses: containerd \(\/etc\/containerd\/config\.toml, \/lib\/systemd\/system\/containerd\.service\) and CRI-O \(\/etc\/crio\/crio\.conf, \/lib\/systemd\/system\/crio\.service\) are both on it and no Node object was read; nothing was changed$/,
    );
  });

  test('both k3s and rke2 directories and no Node object: refused; the kubelet +rke2r1 tells', () => {
    const files = { ...k3sAgent.files, ...distribution('rke2 server').files };
    expect(refusal(() => decideTarget('auto', WASMTIME, gatherEvidence(new HostFs(rootOf(files)), undefined, 'node-1')))).toMatch(/^target auto finds no target for node node-1: microk8s: .*; k3s: the node is rke2 .*; rke2: the node is k3s .*; containerd: the node is k3s /);
    const rke2 = distribution('rke2 server');
    expect(decideTarget('auto', WASMTIME, gatherEvidence(new HostFs(rootOf(files)), nodeOf(rke2), 'node-1')).target.name).toBe('rke2');
  });

  test('a kubelet on Docker (cri-dockerd), or nothing at all: refused, saying what was found', () => {
    const docker = { labels: {}, containerRuntimeVersion: 'docker://24.0.7', kubeletVersion: 'v1.28.2', osImage: 'Ubuntu 22.04.3 LTS' };
    expect(refusal(() => decideTarget('auto', WASMTIME, gatherEvidence(new HostFs(rootOf({})), docker, 'node-1')))).toMatch(
      /^target auto finds no target for node node-1: the kubelet talks to docker:\/\/24\.0\.7, a runtime no target configures \(node object: runtime docker:\/\/24\.0\.7, /,
    );
    expect(refusal(() => decideTarget('auto', WASMTIME, gatherEvidence(new HostFs(rootOf({})), undefined, 'node-1')))).toMatch(
      /^target auto finds no target for node node-1: neither containerd nor CRI-O: no Node object was read and none of \/etc\/containerd\/config\.toml, \/usr\/bin\/containerd, .* exists on the node/,
    );
  });

  test('the kubelet talks to containerd but none of its files is where the catalog has them: chosen, with a warning', () => {
    const decision = decideTarget('auto', WASMTIME, gatherEvidence(new HostFs(rootOf({})), nodeOf(kubeadm), 'node-1'));
    expect(decision.target.name).toBe('containerd');
    expect(decision.warnings).toEqual([expect.stringMatching(/^none of containerd's files is on the node root \(\/etc\/containerd\/config\.toml, .*\): is the node root the host's \/\?$/)]);
  });

  test('a masked unit (a link to /dev/null, a device or nothing in a node root) is no unit file', () => {
    const root = rootOf(k3sAgent.files);
    fs.symlinkSync('/dev/null', path.join(root, 'etc/systemd/system/k3s.service'));
    expect(decideTarget('auto', WASMTIME, gatherEvidence(new HostFs(root), nodeOf(k3sAgent), 'n')).target.restartUnits).toEqual(['k3s-agent']);
  });
});

describe('an explicit target that contradicts its node is refused', () => {
  const nodeCases: Array<[string, string, RegExp]> = [
    ['ubuntu_22_04', 'OpenShift worker', /the kubelet talks to cri-o:\/\/1\.29\.9-5\.rhaos4\.16\.git7a0f0f9\.el9, not to containerd \(node object: .*\); target auto would choose rhel8; nothing was changed$/],
    ['containerd', 'kubeadm on Debian 12 with CRI-O', /the kubelet talks to cri-o:\/\/1\.31\.1, not to containerd/],
    ['crio', 'kubeadm on Ubuntu', /the kubelet talks to containerd:\/\/1\.7\.22, not to CRI-O/],
    ['microk8s', 'kubeadm on Ubuntu', /\/var\/snap\/microk8s\/current\/args\/containerd-template\.toml does not exist, which every microk8s node has/],
    ['k3s', 'kubeadm on Ubuntu', /\/var\/lib\/rancher\/k3s\/agent\/etc\/containerd does not exist, which every k3s node has; the kubelet is v1\.30\.4, not k3s's \(\+k3s…\)/],
    ['containerd', 'k3s agent', /the node is k3s \(\/var\/lib\/rancher\/k3s\/agent\/etc\/containerd exists and the kubelet is v1\.32\.3\+k3s1\): its containerd reads the config it renders into \/var\/lib\/rancher\/k3s\/agent\/etc\/containerd, not \/etc\/containerd\/config\.toml/],
    ['rke2', 'k3s server', /the kubelet is v1\.30\.6\+k3s1, not rke2's \(\+rke2…\)/],
    ['ubuntu_24_04', 'microk8s', /the node is microk8s \(\/var\/snap\/microk8s\/current\/args\/containerd-template\.toml exists\)/],
  ];
  test.each(nodeCases)('%s on %s (with the Node object)', (target, dist, message) => {
    const text = refusal(() => decideTarget(findTarget(target), WASMTIME, evidence(distribution(dist))));
    expect(text).toMatch(new RegExp(`^target ${target} does not fit node node-1: `));
    expect(text).toMatch(message);
  });

  // From the node's files alone (no cluster), through install: nothing written, nothing run.
  const fileCases: Array<[string, Record<string, string>, RegExp]> = [
    ['microk8s', distribution('kubeadm on Ubuntu').files, /does not exist, which every microk8s node has/],
    ['k3s', distribution('kubeadm on Ubuntu').files, /\/var\/lib\/rancher\/k3s\/agent\/etc\/containerd does not exist, which every k3s node has/],
    ['containerd', distribution('k3s agent').files, /the node is k3s \(\/var\/lib\/rancher\/k3s\/agent\/etc\/containerd exists\)/],
    ['rke2', distribution('k3s agent').files, /the node is k3s/],
    ['ubuntu_22_04', distribution('OpenShift worker').files, /no containerd on the node \(none of \/etc\/containerd\/config\.toml, .*\), but CRI-O: \/etc\/crio\/crio\.conf, \/etc\/crio\/crio\.conf\.d, \/usr\/lib\/systemd\/system\/crio\.service/],
    ['crio', { '/etc/containerd/config.toml': fixture('containerd-2-default.toml') }, /no CRI-O on the node \(none of .*\), but containerd: \/etc\/containerd\/config\.toml/],
  ];
  test.each(fileCases)('install --target %s on a node whose files say otherwise: refused, the node root unchanged, no command run', async (target, files, message) => {
    const root = rootOf(files);
    const before = snapshot(root);
    const effects = effectsFor(root);
    const run = install(settingsFor(['install', '--node-root', root, '--target', target, '--runtime', WASMTIME.name, '--artifacts', makeArtifacts(target)]), effects);
    await expect(run).rejects.toThrow(TargetMismatchError);
    await expect(run).rejects.toThrow(message);
    expect(snapshot(root)).toEqual(before);
    expect(effects.runner.calls).toEqual([]);
  });

  test('plan refuses the same way, and prints nothing of a diff', async () => {
    const root = rootOf(distribution('k3s agent').files);
    await expect(planCommand(settingsFor(['plan', '--node-root', root, '--target', 'containerd', '--runtime', WASMTIME.name, '--artifacts', makeArtifacts('containerd')]), effectsFor(root))).rejects.toThrow(/^target containerd does not fit node/);
  });
});

describe('an explicit target the node does not contradict goes on as before', () => {
  test("ubuntu_22_04 on Debian: the containerd layout is the same, so only a warning (the original chart's targets keep working)", () => {
    const decision = decideTarget(findTarget('ubuntu_22_04'), WASMTIME, evidence(distribution('kubeadm on Debian 12, containerd 2.x')));
    expect(decision.target.name).toBe('ubuntu_22_04');
    expect(decision.evidence).toContain('target ubuntu_22_04 (given): nothing on the node contradicts it');
    expect(decision.warnings).toEqual(['target ubuntu_22_04 is for Ubuntu 22.04 nodes and this one runs Debian GNU/Linux 12 (bookworm): its containerd files are where ubuntu_22_04 expects them, so the install goes on']);
  });

  test.each([
    ['rhel8', 'kubeadm on Debian 12 with CRI-O'],
    ['rhel8_plugins', 'OpenShift worker'],
    ['crio', 'OpenShift worker'],
    ['ubuntu_20_04', 'kubeadm on Ubuntu'],
    ['k3s', 'k3s agent'],
  ])('%s on %s', (target, dist) => {
    expect(decideTarget(findTarget(target), WASMTIME, evidence(distribution(dist))).target.name).toBe(target);
  });
});

test('remove --target auto without a state file finds what an install left where the node keeps it', async () => {
  const d = distribution('k3s agent');
  const root = rootOf(d.files);
  const before = snapshot(root);
  const artifacts = makeArtifacts('k3s');
  await install(settingsFor(['install', '--node-root', root, '--target', 'k3s', '--runtime', WASMTIME.name, '--artifacts', artifacts]), effectsFor(root));
  fs.rmSync(path.join(root, 'opt/knawd/state.json'));
  const effects = effectsFor(root);
  await remove(settingsFor(['remove', '--node-root', root, '--target', 'auto']), effects);
  expect(snapshot(root)).toEqual(before);
  expect(effects.runner.calls.filter((c) => c.includes('restart'))).toEqual([RESTART('k3s-agent')]);
});
