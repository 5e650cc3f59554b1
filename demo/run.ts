/**
 * The demo's cluster part, run in a process of its own (main.ts starts it, detached, and talks to it over IPC),
 * so that `--keep` can leave the cluster running after `npm run demo` returns: a throwaway single-node cluster
 * (containerd 2.x), the API server forwarded to the machine's loopback, the chart from dist/ installed with each
 * shipped engine in turn (the WASI test Job under each, the README's WASM HTTP service under the one that
 * serves, its answer fetched from inside the node's network), then — without `--keep` — helm uninstall and a
 * teardown that checks nothing is left behind. With `--knative`, Knative Serving comes up before the chart (whose
 * `patchKnative: auto` then wires it up) and the README's Knative Service serves the same module, asked through
 * its revision's Service (there is no networking layer: demo/cluster/knative.ts). SIGTERM/SIGINT at any point:
 * teardown, exit 128+signal.
 */
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { INSTALLED_LABEL } from '../lib/catalog/node-contract';
import { RUNTIMES, RuntimeName } from '../lib/catalog/runtimes';
import { KNATIVE_FEATURE } from '../lib/catalog/node-contract';
import { WASM_SERVICE_ANSWER } from '../lib/catalog/service-image';
import { NODE_NAME, NodeCluster, startNodeCluster } from './cluster/cluster';
import { leaveSignalsToCaller, runCommand, tool } from './cluster/control-plane';
import { knativeImages } from './cluster/images/knative-images';
import { WASM_LINE } from './cluster/images/test-images';
import { deleteKnativeServices, installKnativeServing, KNATIVE_NAMESPACE, revisionGet, waitRevisionReady } from './cluster/knative';
import { exec, REPO } from './cluster/process';
import { helmInstall, helmTest, helmUninstall, switchEngine, waitFor } from './cluster/product';
import { footprintLine, iptablesRules, leftBehind, RunFootprint } from './leftovers';
import { Forwarder, forwardApiServer, loopbackKubeconfig } from './loopback';
import { engineOrder } from './options';
import { readmeExample, readmeExampleObjects } from './readme-examples';
import { Row } from './summary';
import { DEMO_DIR, KEPT_STATE, KeptState, KNATIVE_DEMO_NAMESPACE, KUBECONFIG, RunnerMessage, RunnerOptions } from './state';

const send = (m: RunnerMessage): void => {
  if (process.send && process.connected) process.send(m);
  else if (m.type === 'line') console.log(m.text);
};
const say = (text: string): void => send({ type: 'line', text });

/** GET through kube-proxy's DNAT of the ClusterIP, from inside the node's network namespace. */
function httpGet(h: NodeCluster, url: string): string {
  const [command, ...args] = h.netns.enter(['curl', '--silent', '--show-error', '--fail', '--max-time', '10', url]);
  const r = exec(command, args, { timeoutMs: 20_000 });
  if (r.code !== 0) throw new Error(`GET ${url} from the node's network failed: ${r.stderr.trim() || `exit ${r.code}`}`);
  return r.stdout.trim();
}

export async function runDemo(o: RunnerOptions, listener: net.Server): Promise<void> {
  leaveSignalsToCaller();
  const rows: Row[] = [];
  const rulesBefore = iptablesRules();
  let starting: Promise<NodeCluster> | undefined;
  let forwarder: Forwarder | undefined;
  let footprint: RunFootprint | undefined;
  let tearing: Promise<string[]> | undefined;

  const teardown = (): Promise<string[]> =>
    (tearing ??= (async () => {
      const problems: string[] = [];
      await forwarder?.stop();
      listener.close();
      if (starting) {
        const h = await starting.catch(() => undefined);
        if (h) problems.push(...(await h.stop()));
      }
      for (const f of [KUBECONFIG, KEPT_STATE]) fs.rmSync(f, { force: true });
      if (footprint) problems.push(...leftBehind(footprint, rulesBefore));
      return problems;
    })());

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      say(`${signal}: tearing down ...`);
      void teardown().then((left) => {
        say(left.length ? `torn down; left behind: ${left.join('; ')}` : 'torn down: nothing left behind');
        process.exit(128 + os.constants.signals[signal]);
      });
    });
  }

  const step = async <T>(name: string, engine: string, fn: () => Promise<[T, string]>): Promise<T> => {
    // Once a signal started the teardown, no step may start anything more.
    if (tearing) throw new Error('not started: interrupted');
    say(`→ ${name}${engine === '-' ? '' : ` [${engine}]`} ...`);
    const started = Date.now();
    try {
      const [value, result] = await fn();
      const seconds = (Date.now() - started) / 1000;
      rows.push({ step: name, seconds, result: `ok: ${result}`, engine });
      say(`  ok (${seconds.toFixed(1)} s): ${result}`);
      return value;
    } catch (error) {
      const first = (error instanceof Error ? error.message : String(error)).split('\n')[0];
      rows.push({ step: name, seconds: (Date.now() - started) / 1000, result: `FAILED: ${first}`, engine });
      throw error;
    }
  };

  let answeredSeconds: number | undefined;
  try {
    const clusterStarted = Date.now();
    const h = await step('cluster up: etcd, kube-apiserver, controller-manager, scheduler; node Ready', '-', async () => {
      starting = startNodeCluster(2);
      const c = await starting;
      footprint = { dirs: [path.dirname(c.node.options.base), c.cluster.dir], cgroup: c.node.cgroupRoot, netns: { inode: c.netns.inode, marker: c.netns.marker }, pids: [] };
      const version = exec(c.node.options.containerd === 2 ? path.join(REPO, '.tools', 'containerd2', 'bin', 'containerd') : 'containerd', ['--version']).stdout.trim().split(' ')[2];
      return [c, `node ${NODE_NAME} Ready (containerd ${version}, its files in ${path.dirname(c.node.options.base)})`];
    });

    await step(`API server on this machine's loopback (127.0.0.1:${o.port}): kubectl get nodes`, '-', async () => {
      forwarder = forwardApiServer(listener, h.netns, path.join(DEMO_DIR, 'forwarder.log'));
      footprint = { ...footprint!, pids: [forwarder.pid] };
      say(footprintLine(footprint));
      fs.writeFileSync(KUBECONFIG, loopbackKubeconfig(o.port, h.cluster.caFile, h.cluster.token), { mode: 0o600 });
      const r = await runCommand(tool('kubectl'), ['get', 'nodes', '-o', 'name', '--request-timeout=20s'], { env: { KUBECONFIG }, timeoutMs: 30_000 });
      if (r.code !== 0 || r.stdout.trim() !== `node/${NODE_NAME}`) throw new Error(`kubectl through 127.0.0.1:${o.port} answered (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
      return [undefined, r.stdout.trim()];
    });

    if (o.knative) {
      await step('Knative Serving up (its own config/core, our images of its five components)', '-', async () => {
        const kn = knativeImages();
        await installKnativeServing(h, kn, { autoscaler: {} });
        return [undefined, `knative.dev/serving ${kn.release.serving}: controller, webhook, activator, autoscaler Ready`];
      });
    }

    const engines = engineOrder(o.runtime);
    const knService = readmeExample('knative-service');
    const knRevision = `${(readmeExampleObjects('knative-service')[0].metadata as { name: string }).name}-00001`;
    const service = readmeExample('deployment');
    const serviceObjects = readmeExampleObjects('deployment');
    const deployment = serviceObjects.find((x) => x.kind === 'Deployment')!;
    const svc = serviceObjects.find((x) => x.kind === 'Service')!;
    // The service runs only under an engine that can serve (RuntimeSpec.serves); it is taken down before the
    // node switches to the next engine, and before the uninstall, only while it is up.
    let servicesUp = false;
    const removeServices = async (): Promise<void> => {
      if (!servicesUp) return;
      servicesUp = false;
      await h.kubectlOk(['delete', '-f', '-', '--wait=true', '--timeout=120s'], { input: service, timeoutMs: 130_000 });
      if (!o.knative) return;
      await deleteKnativeServices(h, KNATIVE_DEMO_NAMESPACE);
      await h.kubectlOk(['delete', 'namespace', KNATIVE_DEMO_NAMESPACE, '--wait=true', '--timeout=120s'], { timeoutMs: 130_000 });
    };
    for (const [i, engine] of engines.entries()) {
      const spec = RUNTIMES.find((r) => r.name === engine)!;
      if (i === 0) {
        await step(`helm install dist/charts/knawd-deployer (node labelled ${INSTALLED_LABEL.value})`, engine, async () => {
          // patchKnative as the chart ships it (auto): it wires Knative up because Knative is there.
          await helmInstall(h, engine, o.knative ? { patchKnative: 'auto' } : {});
          return [undefined, `${INSTALLED_LABEL.key}=${INSTALLED_LABEL.value}, ${engineFiles(h, engine)}${o.knative ? await knativeWired(h) : ''}`];
        });
      } else {
        await step(`helm upgrade --set ociType=${engine} (the installer switches the node)`, engine, async () => {
          const report = await switchEngine(h, engine);
          return [undefined, `install complete, ${String(report.restarts)} containerd restart, ${engineFiles(h, engine)}`];
        });
      }
      await step('WASI test Job (helm test)', engine, async () => {
        const out = await helmTest(h);
        if (!out.includes(WASM_LINE)) throw new Error(`helm test passed but its pod did not print "${WASM_LINE}":\n${out}`);
        return [undefined, `Succeeded, printed "${WASM_LINE}"`];
      });
      if (!spec.serves.able) continue;
      await step("WASM HTTP service (README's Deployment + Service) rolled out", engine, async () => {
        await h.kubectlOk(['apply', '-f', '-'], { input: service });
        servicesUp = true;
        await h.kubectlOk(['rollout', 'status', `deployment/${deployment.metadata.name}`, '--timeout=180s'], { timeoutMs: 190_000 });
        return [undefined, `deployment/${deployment.metadata.name}: ${deployment.spec.replicas} replicas Ready`];
      });
      await step(`WASM HTTP service answered (GET / on service/${svc.metadata.name}, from the node's network)`, engine, async () => {
        const ip = JSON.parse(await h.kubectlOk(['get', 'service', svc.metadata.name, '-o', 'json'])).spec.clusterIP;
        const body = httpGet(h, `http://${ip}:${svc.spec.ports[0].port}/`);
        const m = WASM_SERVICE_ANSWER.exec(body);
        if (!m || m[1] !== spec.engine) throw new Error(`the service answered "${body}", expected ${WASM_SERVICE_ANSWER} with engine=${spec.engine}`);
        answeredSeconds ??= (Date.now() - clusterStarted) / 1000;
        return [undefined, body];
      });
      if (o.knative) {
        await step(`README's Knative Service Ready (revision ${knRevision}, queue-proxy beside the module)`, engine, async () => {
          await h.kubectlOk(['create', 'namespace', KNATIVE_DEMO_NAMESPACE]);
          // Knative's webhook reads config-features through an informer: it may see the flag a moment late.
          let last = '';
          await waitFor(h, "Knative's webhook admitting README's Knative Service", async () => {
            const r = await h.cluster.kubectl(['-n', KNATIVE_DEMO_NAMESPACE, 'apply', '-f', '-'], { input: knService });
            last = r.stderr.trim();
            return r.code === 0 ? true : undefined;
          }, 60_000, () => last);
          await waitRevisionReady(h, knRevision, KNATIVE_DEMO_NAMESPACE);
          return [undefined, `revision ${KNATIVE_DEMO_NAMESPACE}/${knRevision} Ready`];
        });
        await step(`Knative Service answered (GET / on service/${knRevision}, from the node's network)`, engine, async () => {
          const answer = await revisionGet(h, knRevision, '/', KNATIVE_DEMO_NAMESPACE);
          const body = answer.body.trim();
          const m = WASM_SERVICE_ANSWER.exec(body);
          if (answer.status !== 200 || !m || m[1] !== spec.engine) throw new Error(`the revision answered ${answer.status} "${body}", expected ${WASM_SERVICE_ANSWER} with engine=${spec.engine}`);
          return [undefined, body];
        });
      }
      if (i < engines.length - 1) await removeServices();
    }

    if (o.keep) {
      const kept: KeptState = { pid: process.pid, port: o.port, runtime: o.runtime, kubeconfig: KUBECONFIG, since: new Date().toISOString() };
      fs.writeFileSync(KEPT_STATE, JSON.stringify(kept, null, 2));
      send({ type: 'done', ok: true, rows, answeredSeconds, kept });
      process.disconnect?.();
      // Kept until `npm run demo -- down` (SIGTERM, handled above).
      setInterval(() => undefined, 3_600_000);
      return;
    }

    await step('helm uninstall (node restored byte for byte)', o.runtime, async () => {
      await removeServices();
      const r = await helmUninstall(h);
      if (r.code !== 0) throw new Error(`helm uninstall failed: ${r.output}`);
      return [undefined, 'containerd config as before, /opt/knawd gone, labels gone'];
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    await teardownStep(rows, teardown);
    send({ type: 'done', ok: false, rows, answeredSeconds, error: message });
    return exitSoon(1);
  }
  const clean = await teardownStep(rows, teardown);
  send({ type: 'done', ok: clean, rows, answeredSeconds });
  return exitSoon(clean ? 0 : 1);
}

/** The teardown as the summary's last row; true when nothing was left behind. */
async function teardownStep(rows: Row[], teardown: () => Promise<string[]>): Promise<boolean> {
  say('→ teardown ...');
  const started = Date.now();
  const left = await teardown();
  const seconds = (Date.now() - started) / 1000;
  const result = left.length === 0 ? 'ok: nothing left behind' : `FAILED: left behind: ${left.join('; ')}`;
  rows.push({ step: 'teardown (processes, mounts, network namespace, cgroups, iptables, files)', seconds, result, engine: '-' });
  say(`  ${result}`);
  return left.length === 0;
}

/** `, Knative wired up` once the installer has enabled Knative's runtimeClassName flag. */
async function knativeWired(h: NodeCluster): Promise<string> {
  const { configMap, key, value } = KNATIVE_FEATURE;
  await waitFor(h, `${KNATIVE_NAMESPACE}/${configMap} ${key}=${value}`, async () => {
    const data = JSON.parse(await h.kubectlOk(['-n', KNATIVE_NAMESPACE, 'get', 'configmap', configMap, '-o', 'json'])).data ?? {};
    return data[key] === value ? true : undefined;
  }, 120_000);
  return `, Knative wired up (${key}: ${value})`;
}

/** Which engine build the node carries under the host prefix (and none of the other engines' files). */
function engineFiles(h: NodeCluster, engine: RuntimeName): string {
  const files = [...h.node.upper().keys()].filter((p) => p.startsWith('opt/knawd/'));
  if (!files.includes(`opt/knawd/bin/${engine}`)) throw new Error(`the node has no /opt/knawd/bin/${engine} (has: ${files.join(', ') || 'nothing'})`);
  const others = RUNTIMES.filter((r) => r.name !== engine).flatMap((r) => files.filter((p) => p.includes(r.name) || p.includes(r.library)));
  if (others.length > 0) throw new Error(`the node still has ${others.map((p) => `/${p}`).join(', ')} beside /opt/knawd/bin/${engine}`);
  return `node runs /opt/knawd/bin/${engine}`;
}

/** Exits once the IPC channel has flushed. */
function exitSoon(code: number): void {
  setTimeout(() => process.exit(code), 200);
}
