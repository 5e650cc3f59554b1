// PID 1 of the test node and its systemctl shim (demo/cluster). Standard library only; built and cached
// by tools/install-node-tools.sh.
module knawd-deployer/demo/cluster/supervisor

go 1.24
