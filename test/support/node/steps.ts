/**
 * One cluster per test file and its steps in order: a step that needs an earlier one fails with "an earlier
 * step failed" instead of a confusing second error when that one did not finish.
 */
import { NodeCluster, startNodeCluster } from '../../../demo/cluster/cluster';
import { ContainerdMajor } from '../../../demo/cluster/node';

export class ClusterSteps {
  private cluster?: NodeCluster;
  private readonly done = new Set<string>();

  async start(major: ContainerdMajor): Promise<NodeCluster> {
    this.cluster = await startNodeCluster(major);
    console.log(`containerd ${major}.x, installer image: ${this.cluster.images.installer.description}`);
    return this.cluster;
  }

  /** The cluster, once every one of `steps` has been marked done. */
  need(...steps: string[]): NodeCluster {
    if (!this.cluster) throw new Error('the cluster did not start (see the beforeAll error)');
    const missing = steps.filter((s) => !this.done.has(s));
    if (missing.length > 0) throw new Error(`an earlier step failed: ${missing.join(', ')}`);
    return this.cluster;
  }

  mark(step: string): void {
    this.done.add(step);
  }

  async stop(): Promise<void> {
    await this.cluster?.stop();
  }
}

/** A ClusterSteps whose cluster this test file starts before its tests and stops after them. */
export function clusterForFile(major: ContainerdMajor): ClusterSteps {
  const steps = new ClusterSteps();
  beforeAll(() => steps.start(major).then(() => undefined), 8 * 60_000);
  afterAll(() => steps.stop());
  return steps;
}
