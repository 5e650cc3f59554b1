// Command node-supervisor is PID 1 of the single-node cluster harness's node (demo/cluster) and, invoked
// as `systemctl`, the shim the installer's `nsenter -t 1 -m -- systemctl restart containerd` reaches.
//
// Why Go and not the harness's TypeScript: PID 1 of a PID namespace must reap every orphan (containerd's shims
// are reparented to it), and Node.js can only wait for the children it spawned itself.
//
//	node-supervisor run CONFIG.json   PID 1: starts the units in order, each waited ready, serves the socket
//	node-supervisor --version
//	systemctl ARGS...                 the shim: forwards ARGS to the supervisor, prints its answer, exits with its code
//
// Protocol: one JSON request per connection on the unix socket SocketPath, one JSON answer back.
//
//	{"cmd":"systemctl","args":[...]}  -> {"code":N,"stdout":"...","stderr":"..."}   (every call logged to CallLog)
//	{"cmd":"delay","unit":U,"ms":N}   -> every later restart of U waits N ms between stop and start
//	{"cmd":"status"}                  -> {"units":[{name,state,pid,starts,exit}]}
//
// A unit that exits on its own is not restarted: it stays "failed" with its exit status, so the test fails
// and shows the unit's log instead of a silently restarted component.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// Version of the protocol; the harness checks it.
const Version = "node-supervisor 1"

// SocketPath is fixed: the shim runs with the installer container's environment, so it cannot be told.
const SocketPath = "/run/knawd-node/supervisor.sock"

type request struct {
	Cmd  string   `json:"cmd"`
	Args []string `json:"args,omitempty"`
	Unit string   `json:"unit,omitempty"`
	Ms   int      `json:"ms,omitempty"`
}

type answer struct {
	Code   int          `json:"code"`
	Stdout string       `json:"stdout,omitempty"`
	Stderr string       `json:"stderr,omitempty"`
	Units  []unitStatus `json:"units,omitempty"`
}

func main() {
	if filepath.Base(os.Args[0]) == "systemctl" {
		os.Exit(shim(os.Args[1:]))
	}
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Println(Version)
		return
	}
	if len(os.Args) == 3 && os.Args[1] == "run" {
		if err := run(os.Args[2]); err != nil {
			fmt.Fprintf(os.Stderr, "node-supervisor: %v\n", err)
			os.Exit(1)
		}
		return
	}
	fmt.Fprintln(os.Stderr, "usage: node-supervisor run CONFIG.json | --version (or invoked as systemctl)")
	os.Exit(2)
}

// shim sends the systemctl arguments to the supervisor and relays its answer.
func shim(args []string) int {
	a, err := call(request{Cmd: "systemctl", Args: args})
	if err != nil {
		fmt.Fprintf(os.Stderr, "systemctl (knawd test node shim): cannot reach the node supervisor at %s: %v\n", SocketPath, err)
		return 1
	}
	io.WriteString(os.Stdout, a.Stdout)
	io.WriteString(os.Stderr, a.Stderr)
	return a.Code
}

func call(r request) (answer, error) {
	var a answer
	conn, err := net.Dial("unix", SocketPath)
	if err != nil {
		return a, err
	}
	defer conn.Close()
	if err := json.NewEncoder(conn).Encode(r); err != nil {
		return a, err
	}
	if err := json.NewDecoder(conn).Decode(&a); err != nil {
		return a, fmt.Errorf("no answer: %w", err)
	}
	return a, nil
}

func unitName(arg string) string { return strings.TrimSuffix(arg, ".service") }
