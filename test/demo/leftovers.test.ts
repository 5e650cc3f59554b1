/**
 * The demo's leftover check names the node's network namespace by inode number and marker: the kernel gives a
 * freed namespace's number to the next namespace created on the machine (a pod sandbox of any other cluster
 * here), whose processes are not the demo's leftovers; a process still in the node's own namespace is.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createNetworkNamespace, NetworkNamespace, processesInNetworkNamespace } from '../../demo/cluster/netns';
import { iptablesRules, leftBehind, RunFootprint } from '../../demo/leftovers';

describe("a process in the node's network namespace", () => {
  let dir: string;
  let netns: NetworkNamespace;
  let sleeper: ChildProcess;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'knawd-leftovers-'));
    netns = createNetworkNamespace(dir);
    const [command, ...args] = netns.enter(['sleep', '600']);
    sleeper = spawn(command, args, { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (processesInNetworkNamespace(netns).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  });

  afterAll(async () => {
    if (sleeper.exitCode === null && sleeper.signalCode === null) {
      const gone = new Promise((resolve) => sleeper.once('exit', resolve));
      sleeper.kill('SIGKILL');
      await gone;
    }
    netns.remove();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('is found while the namespace is the node\'s, and reported left behind', () => {
    expect(processesInNetworkNamespace(netns)).toEqual([{ pid: expect.any(Number), cmdline: 'sleep 600' }]);
    const footprint: RunFootprint = { dirs: [], cgroup: '/knawd-leftovers-none', netns: { inode: netns.inode, marker: netns.marker }, pids: [] };
    expect(leftBehind(footprint, iptablesRules())).toEqual([expect.stringMatching(/^process \d+ in the node's network namespace: sleep 600$/)]);
  });

  test('is not taken for a leftover of a freed namespace that had the same inode number', () => {
    const freed: RunFootprint = { dirs: [], cgroup: '/knawd-leftovers-none', netns: { inode: netns.inode, marker: 'knawd:knawd-node-freed' }, pids: [] };
    expect(leftBehind(freed, iptablesRules())).toEqual([]);
  });
});
