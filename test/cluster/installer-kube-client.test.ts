/**
 * The installer's own Kubernetes API client (lib/installer/kube*.ts) against a real kube-apiserver: the
 * in-cluster config with a token that rotates, client certificates from files and from inline data, TLS
 * verification (wrong CA, tls-server-name, insecure-skip-tls-verify), paging, and the errors a node's log
 * shows for 401/403/404 and an unreachable server.
 */
import * as fs from 'fs';
import * as path from 'path';
import { connectCluster, HttpCluster } from '../../lib/installer/kube/cluster';
import { KubeHttp } from '../../lib/installer/kube/http';
import { Cluster, freePort, startCluster } from '../../demo/cluster/control-plane';
import { KNATIVE_MANIFEST, manifestPath } from '../support/cluster/objects';
import { createNode, nodeLabels } from '../support/cluster/node';
import { tempDir } from '../installer/support';
import { openssl } from '../../demo/cluster/openssl';

jest.setTimeout(60_000);

const NODE = 'node-k';
const CERT_USER = 'knawd-cert-user';


function kubeconfig(dir: string, name: string, cluster: Record<string, unknown>, user: Record<string, unknown>): string {
  const file = path.join(dir, `${name}.kubeconfig`);
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster }],
    users: [{ name: 'u', user }],
    contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'x',
  };
  fs.writeFileSync(file, JSON.stringify(doc), { mode: 0o600 });
  return file;
}

describe("the installer's API client against a real API server", () => {
  let cluster: Cluster;
  let work: string;
  let port: string;
  let installerToken: () => Promise<string>;

  beforeAll(async () => {
    cluster = await startCluster();
    port = new URL(cluster.server).port;
    work = tempDir('knawd-kube-client-');
    await cluster.kubectlOk(['create', 'namespace', 'knative-serving']);
    await cluster.kubectlOk(['apply', '--server-side', '-f', manifestPath('ubuntu_22_04', 'crun-wasmtime'), '-f', KNATIVE_MANIFEST]);
    await createNode(cluster, NODE, 'containerd://1.7.22');
    installerToken = async () => (await cluster.kubectlOk(['-n', 'knawd', 'create', 'token', 'knawd-installer', '--duration=30m'])).trim();
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it('in-cluster: reads the ServiceAccount token before every request, so a rotated token is used at once', async () => {
    const sa = tempDir('knawd-sa-');
    fs.copyFileSync(cluster.caFile, path.join(sa, 'ca.crt'));
    fs.writeFileSync(path.join(sa, 'token'), await installerToken());
    const api = connectCluster(undefined, { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: port }, sa);
    expect(api).toBeDefined();
    expect(await api!.getNode(NODE)).toEqual({ labels: { 'kubernetes.io/hostname': NODE }, containerRuntimeVersion: 'containerd://1.7.22' });

    fs.writeFileSync(path.join(sa, 'token'), 'revoked-token');
    await expect(api!.getNode(NODE)).rejects.toThrow(`Kubernetes API: cannot read node ${NODE} (HTTP 401): Unauthorized`);

    fs.writeFileSync(path.join(sa, 'token'), `${await installerToken()}\n`);
    expect((await api!.getNode(NODE)).containerRuntimeVersion).toBe('containerd://1.7.22');
  });

  describe('client certificates', () => {
    let certDir: string;
    beforeAll(async () => {
      certDir = tempDir('knawd-cert-');
      fs.copyFileSync(cluster.caFile, path.join(certDir, 'ca.crt'));
      openssl(certDir, ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'client.key']);
      openssl(certDir, ['req', '-new', '-key', 'client.key', '-out', 'client.csr', '-subj', `/CN=${CERT_USER}`]);
      openssl(certDir, ['x509', '-req', '-in', 'client.csr', '-CA', cluster.caFile, '-CAkey', path.join(cluster.dir, 'ca.key'), '-CAcreateserial', '-CAserial', path.join(certDir, 'ca.srl'), '-out', 'client.crt', '-days', '1']);
      await cluster.kubectlOk(['create', 'clusterrolebinding', CERT_USER, '--clusterrole=knawd-installer-nodes', `--user=${CERT_USER}`]);
    });

    it('from files named relative to the kubeconfig, as kubectl resolves them', async () => {
      const file = kubeconfig(certDir, 'files', { server: cluster.server, 'certificate-authority': 'ca.crt' }, { 'client-certificate': 'client.crt', 'client-key': 'client.key' });
      await connectCluster(file, {})!.setNodeLabels(NODE, { 'example.com/by-cert': 'files' });
      expect(await nodeLabels(cluster, NODE)).toMatchObject({ 'example.com/by-cert': 'files' });
    });

    it('from inline base64 data', async () => {
      const b64 = (name: string) => fs.readFileSync(path.join(certDir, name)).toString('base64');
      const file = kubeconfig(work, 'inline', { server: cluster.server, 'certificate-authority-data': b64('ca.crt') }, { 'client-certificate-data': b64('client.crt'), 'client-key-data': b64('client.key') });
      const api = connectCluster(file, {})!;
      expect(await api.listNodes('example.com/by-cert=files')).toEqual([NODE]);
      await api.setNodeLabels(NODE, { 'example.com/by-cert': null });
      expect(await nodeLabels(cluster, NODE)).not.toHaveProperty(['example.com/by-cert']);
    });
  });

  describe('TLS verification', () => {
    it('refuses a server whose certificate another CA signed', async () => {
      const otherCa = tempDir('knawd-other-ca-');
      openssl(otherCa, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=someone-else']);
      const file = kubeconfig(work, 'other-ca', { server: cluster.server, 'certificate-authority': path.join(otherCa, 'ca.crt') }, { token: cluster.token });
      await expect(connectCluster(file, {})!.getNode(NODE)).rejects.toThrow(/cannot read node node-k: 127\.0\.0\.1:\d+: (self[- ]signed certificate in certificate chain|unable to verify)/);
    });

    it('checks tls-server-name against the certificate instead of the address', async () => {
      const as = (name: string) => kubeconfig(work, `sni-${name}`, { server: cluster.server, 'certificate-authority': cluster.caFile, 'tls-server-name': name }, { token: cluster.token });
      expect((await connectCluster(as('kubernetes.default.svc'), {})!.getNode(NODE)).containerRuntimeVersion).toBe('containerd://1.7.22');
      await expect(connectCluster(as('wrong.example'), {})!.getNode(NODE)).rejects.toThrow(/Host: wrong\.example\. is not in the cert's altnames/);
    });

    it('connects without verification only when the kubeconfig says insecure-skip-tls-verify', async () => {
      const file = kubeconfig(work, 'insecure', { server: cluster.server, 'insecure-skip-tls-verify': true }, { token: cluster.token });
      expect((await connectCluster(file, {})!.getNode(NODE)).containerRuntimeVersion).toBe('containerd://1.7.22');
      const noCa = kubeconfig(work, 'no-ca', { server: cluster.server }, { token: cluster.token });
      await expect(connectCluster(noCa, {})!.getNode(NODE)).rejects.toThrow(/self[- ]signed certificate in certificate chain|unable to (verify|get local issuer)/);
    });
  });

  it('lists nodes page by page, following continue tokens', async () => {
    for (const n of ['page-e', 'page-a', 'page-d', 'page-b', 'page-c']) await createNode(cluster, n, 'containerd://1.7.22', { 'example.com/page': 'yes' });
    const http = new KubeHttp({ server: cluster.server, ca: { file: cluster.caFile }, token: { data: cluster.token } });
    const request = jest.spyOn(http, 'request');
    expect(await new HttpCluster(http, 2).listNodes('example.com/page=yes')).toEqual(['page-a', 'page-b', 'page-c', 'page-d', 'page-e']);
    expect(request).toHaveBeenCalledTimes(3);
    expect(await new HttpCluster(http, 2).listNodes('example.com/page=no')).toEqual([]);
  });

  it('turns 403 and 404 answers into one line with what to do; a missing ConfigMap is "not found", not an error', async () => {
    await cluster.kubectlOk(['-n', 'default', 'create', 'serviceaccount', 'nobody']);
    const token = (await cluster.kubectlOk(['-n', 'default', 'create', 'token', 'nobody'])).trim();
    const nobody = connectCluster(kubeconfig(work, 'nobody', { server: cluster.server, 'certificate-authority': cluster.caFile }, { token }), {})!;
    const denied = await nobody.getNode(NODE).catch((e: unknown) => e);
    expect(denied).toMatchObject({
      message: `Kubernetes API: cannot read node ${NODE} (HTTP 403): nodes "${NODE}" is forbidden: User "system:serviceaccount:default:nobody" cannot get resource "nodes" in API group "" at the cluster scope`,
      fix: "grant the installer's ServiceAccount the permission (see the chart's ClusterRoles)",
    });

    const installer = connectCluster(kubeconfig(work, 'installer', { server: cluster.server, 'certificate-authority': cluster.caFile }, { token: await installerToken() }), {})!;
    await expect(installer.getNode('no-such-node')).rejects.toThrow('Kubernetes API: cannot read node no-such-node (HTTP 404): nodes "no-such-node" not found');
    expect(await installer.getConfigMap('knative-serving', 'config-features')).toEqual({ state: 'missing' });
    // Without a RoleBinding in its namespace, Knative's ConfigMap is "not granted": a state, not an error.
    expect(await installer.getConfigMap('knative-serving', 'config-deployment')).toEqual({
      state: 'forbidden',
      message: 'configmaps "config-deployment" is forbidden: User "system:serviceaccount:knawd:knawd-installer" cannot get resource "configmaps" in API group "" in the namespace "knative-serving"',
    });
    expect(await installer.servesApi('serving.knative.dev/v1')).toBe(false);
    expect(await installer.servesApi('node.k8s.io/v1')).toBe(true);
  });

  it('patches a ConfigMap only while it is at the resourceVersion it was read at', async () => {
    await cluster.kubectlOk(['-n', 'knative-serving', 'create', 'configmap', 'config-features', '--from-literal=keep=me', '--from-literal=flag=off']);
    const installer = connectCluster(kubeconfig(work, 'installer-rv', { server: cluster.server, 'certificate-authority': cluster.caFile }, { token: await installerToken() }), {})!;
    const read = await installer.getConfigMap('knative-serving', 'config-features');
    if (read.state !== 'found') throw new Error(`config-features: ${read.state}`);
    expect(read.data).toEqual({ keep: 'me', flag: 'off' });
    // Someone else writes in between: our patch from the old version is refused and changes nothing.
    await cluster.kubectlOk(['-n', 'knative-serving', 'patch', 'configmap', 'config-features', '--type=merge', '-p', '{"data":{"other":"edit"}}']);
    expect(await installer.patchConfigMap('knative-serving', 'config-features', { flag: 'on' }, read.resourceVersion)).toBe('conflict');
    const again = await installer.getConfigMap('knative-serving', 'config-features');
    if (again.state !== 'found') throw new Error(`config-features: ${again.state}`);
    expect(again.data).toEqual({ keep: 'me', flag: 'off', other: 'edit' });
    expect(await installer.patchConfigMap('knative-serving', 'config-features', { flag: 'on', other: null }, again.resourceVersion)).toBe('patched');
    expect(await installer.getConfigMap('knative-serving', 'config-features')).toMatchObject({ state: 'found', data: { keep: 'me', flag: 'on' } });
    await cluster.kubectlOk(['-n', 'knative-serving', 'delete', 'configmap', 'config-features']);
  });

  it('an API server that does not answer is a clear error, not a hang', async () => {
    const closed = await freePort();
    const file = kubeconfig(work, 'closed', { server: `https://127.0.0.1:${closed}`, 'certificate-authority': cluster.caFile }, { token: cluster.token });
    await expect(connectCluster(file, {})!.listNodes('a=b')).rejects.toThrow(`Kubernetes API: cannot list nodes: 127.0.0.1:${closed}: connect ECONNREFUSED 127.0.0.1:${closed}`);
  });
});
