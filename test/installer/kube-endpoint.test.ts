/** Where the API is and how to authenticate: the in-cluster config and kubeconfigs, including the refusals. */
import * as path from 'path';
import { Endpoint, inClusterEndpoint, kubeconfigEndpoint } from '../../lib/installer/kube/endpoint';

const SA = '/run/sa';
const has = (file: string) => file === `${SA}/token`;

describe('inClusterEndpoint', () => {
  test('as client-go builds it: service host and port, the ServiceAccount token and CA', () => {
    expect(inClusterEndpoint({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, has, SA)).toEqual<Endpoint>({
      server: 'https://10.96.0.1:443',
      ca: { file: `${SA}/ca.crt` },
      token: { file: `${SA}/token` },
    });
  });
  test('an IPv6 service host is bracketed; the port defaults to 443', () => {
    expect(inClusterEndpoint({ KUBERNETES_SERVICE_HOST: 'fd00:10:96::1' }, has, SA)?.server).toBe('https://[fd00:10:96::1]:443');
  });
  test('no service host, or no token file: not in a pod', () => {
    expect(inClusterEndpoint({}, has, SA)).toBeUndefined();
    expect(inClusterEndpoint({ KUBERNETES_SERVICE_HOST: '10.96.0.1' }, () => false, SA)).toBeUndefined();
  });
});

describe('kubeconfigEndpoint', () => {
  const FILE = '/home/op/.kube/config';
  const doc = (cluster: object, user: object | null = { token: 't0k3n' }, extra: object = {}) =>
    JSON.stringify({
      clusters: [{ name: 'other', cluster: { server: 'https://other:6443' } }, { name: 'c', cluster }],
      users: user === null ? [] : [{ name: 'u', user }],
      contexts: [{ name: 'x', context: { cluster: 'c', ...(user === null ? {} : { user: 'u' }) } }],
      'current-context': 'x',
      ...extra,
    });

  test('the current context: server, CA, token; relative paths resolve against the kubeconfig directory', () => {
    expect(kubeconfigEndpoint(doc({ server: 'https://api.example:6443/', 'certificate-authority': 'ca.crt' }, { tokenFile: '../tok' }), FILE)).toEqual<Endpoint>({
      server: 'https://api.example:6443',
      ca: { file: '/home/op/.kube/ca.crt' },
      insecureSkipTlsVerify: false,
      token: { file: '/home/op/tok' },
    });
  });

  test('inline data is base64-decoded (a token is not); client certificate and key; tls-server-name; insecure', () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const cluster = { server: 'https://10.0.0.1', 'certificate-authority-data': b64('CA PEM'), 'tls-server-name': 'kubernetes', 'insecure-skip-tls-verify': true };
    const user = { 'client-certificate-data': b64('CERT PEM'), 'client-key': '/abs/key.pem', token: 'plain' };
    expect(kubeconfigEndpoint(doc(cluster, user), FILE)).toEqual<Endpoint>({
      server: 'https://10.0.0.1',
      ca: { data: 'CA PEM' },
      insecureSkipTlsVerify: true,
      tlsServerName: 'kubernetes',
      token: { data: 'plain' },
      clientCertificate: { data: 'CERT PEM' },
      clientKey: { file: '/abs/key.pem' },
    });
  });

  test('a path prefix (an API proxy such as Rancher\'s) is kept', () => {
    expect(kubeconfigEndpoint(doc({ server: 'https://rancher.example/k8s/clusters/c-1/' }), FILE).server).toBe('https://rancher.example/k8s/clusters/c-1');
  });

  test('a context without a user connects anonymously', () => {
    expect(kubeconfigEndpoint(doc({ server: 'https://h' }, null), FILE).token).toBeUndefined();
  });

  test.each<[string, string, string]>([
    ['not YAML', 'a: [b', 'not YAML'],
    ['not a mapping', '- a\n- b\n', 'not a kubeconfig (expected a mapping with clusters, users and contexts)'],
    ['no current context', doc({ server: 'https://h' }, null, { 'current-context': '' }), 'no current-context'],
    ['unknown context', doc({ server: 'https://h' }, null, { 'current-context': 'nope' }), 'current-context "nope" is not among its contexts'],
    ['no server', doc({}), 'cluster "c" has no server'],
    ['plain http', doc({ server: 'http://h:8080' }), 'cluster "c" server "http://h:8080" is not an https:// URL'],
    ['a proxy', doc({ server: 'https://h', 'proxy-url': 'http://proxy:3128' }), 'cluster "c" uses proxy-url, which the installer does not support'],
    ['an exec plugin', doc({ server: 'https://h' }, { exec: { command: 'aws' } }), 'user "u" uses an exec credential plugin, which the installer does not support'],
    ['an auth provider', doc({ server: 'https://h' }, { 'auth-provider': { name: 'oidc' } }), 'user "u" uses an auth-provider plugin'],
    ['basic auth', doc({ server: 'https://h' }, { username: 'a', password: 'b' }), 'user "u" uses basic authentication (removed from Kubernetes in 1.19)'],
    ['impersonation', doc({ server: 'https://h' }, { token: 't', as: 'admin' }), 'user "u" uses impersonation'],
    ['a certificate without key', doc({ server: 'https://h' }, { 'client-certificate': 'c.pem' }), 'user "u" has a client certificate without its key'],
  ])('refuses %s with one line naming the file', (_, text, message) => {
    let error: unknown;
    try {
      kubeconfigEndpoint(text, FILE);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ message: expect.stringContaining(`kubeconfig ${FILE}: ${message}`) });
    expect((error as Error).message).not.toMatch(/\n/);
    expect(error).toHaveProperty('fix', 'pass a kubeconfig whose current context has a server, a CA and a token or client certificate');
  });

  test('a relative kubeconfig path resolves against the working directory', () => {
    expect(kubeconfigEndpoint(doc({ server: 'https://h', 'certificate-authority': 'ca.crt' }), 'kc/config').ca).toEqual({ file: path.resolve('kc', 'ca.crt') });
  });
});
