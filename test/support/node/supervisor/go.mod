// PID 1 of the test node and its systemctl shim (test/support/node). Standard library only; built and cached
// by tools/install-node-tools.sh.
module knawd-deployer/test/support/node/supervisor

go 1.24
