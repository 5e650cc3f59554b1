#!/bin/sh
# The first moments of the test node's PID 1, inside its fresh mount, UTS and PID namespaces
# (demo/cluster/node.ts starts it as `nsenter --net=… unshare --mount --uts --pid --fork --mount-proc`):
# lay the node's file system over the machine's, then become the supervisor (exec: it stays PID 1).
#
#   node-init.sh BASE NODE_NAME SUPERVISOR [HIDDEN_DIR...]
#
# /etc /opt /var /usr: overlays, lower = BASE/seed/<d> (the node's own files) over the machine's /<d>, upper =
#   BASE/upper/<d>: whatever the node writes there lands in the upper dir, the machine's copy is never touched.
# /var/lib/containerd, /var/lib/kubelet, /var/lib/cni, /var/log and /run: real directories BASE/state/* (the
#   overlayfs snapshotter cannot sit on overlayfs, and runtime state must not blur the installer's diff).
# /proc/sys files the kubelet checks (protectKernelDefaults): BASE/sysctl/<name> bound over them in this mount
#   namespace only, so the kubelet finds its values without writing machine-wide sysctls.
# HIDDEN_DIR: masked with an empty read-only tmpfs (e.g. the build cache crun's RUNPATH names, so that only
#   what the installer put on the node can be loaded).
set -eu
base="$1" node_name="$2" supervisor="$3"
shift 3

hostname "$node_name"
for d in etc opt var usr; do
  mount -t overlay "knawd-node-$d" -o "lowerdir=$base/seed/$d:/$d,upperdir=$base/upper/$d,workdir=$base/work/$d" "/$d"
done
mount --bind "$base/state/containerd" /var/lib/containerd
mount --bind "$base/state/kubelet" /var/lib/kubelet
mount --bind "$base/state/cni" /var/lib/cni
mount --bind "$base/state/log" /var/log
mount --bind "$base/state/run" /run
for f in "$base"/sysctl/*; do
  [ -e "$f" ] || continue
  mount --bind "$f" "/proc/sys/$(basename "$f" | tr . /)"
done
for hidden in "$@"; do
  mount -t tmpfs -o ro,size=4k knawd-hidden "$hidden"
done
# Kubelet volume mounts must reach containerd and the containers (both in this namespace).
mount --make-rshared /
exec "$supervisor" run "$base/supervisor.json"
