package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Config is what the harness writes (demo/cluster/supervisor.ts builds it).
type Config struct {
	// CallLog gets one JSON line per systemctl call.
	CallLog string       `json:"callLog"`
	Units   []UnitConfig `json:"units"`
}

type UnitConfig struct {
	Name string   `json:"name"`
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
	Log  string   `json:"log"`
	// Ready: a unix socket that accepts connections, or an http URL answering 200.
	ReadyUnix string `json:"readyUnix,omitempty"`
	ReadyHTTP string `json:"readyHttp,omitempty"`
	// ReadyTimeoutMs bounds a start; StopTimeoutMs the wait after SIGTERM before SIGKILL.
	ReadyTimeoutMs int `json:"readyTimeoutMs"`
	StopTimeoutMs  int `json:"stopTimeoutMs"`
}

type unitStatus struct {
	Name   string `json:"name"`
	State  string `json:"state"` // starting, active, stopping, restarting, inactive, failed
	Pid    int    `json:"pid"`
	Starts int    `json:"starts"`
	Exit   string `json:"exit,omitempty"`
}

type unit struct {
	cfg     UnitConfig
	ops     sync.Mutex // one start/stop/restart of this unit at a time
	mu      sync.Mutex // guards the fields below
	state   string
	pid     int
	starts  int
	exit    string
	exited  chan struct{} // closed when the current process is reaped
	delayMs int
}

type supervisor struct {
	cfg    Config
	units  map[string]*unit
	order  []*unit
	logMu  sync.Mutex
	logF   *os.File
	reaped chan reapEvent
}

type reapEvent struct {
	pid    int
	status syscall.WaitStatus
}

func run(configFile string) error {
	data, err := os.ReadFile(configFile)
	if err != nil {
		return err
	}
	var cfg Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("%s: %w", configFile, err)
	}
	s := &supervisor{cfg: cfg, units: map[string]*unit{}, reaped: make(chan reapEvent, 64)}
	for _, c := range cfg.Units {
		u := &unit{cfg: c, state: "inactive"}
		s.units[c.Name] = u
		s.order = append(s.order, u)
	}
	if s.logF, err = os.OpenFile(cfg.CallLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
		return err
	}

	// SIGCHLD first: from here on every child, ours or adopted, is reaped.
	chld := make(chan os.Signal, 8)
	signal.Notify(chld, syscall.SIGCHLD)
	go s.reap(chld)
	go s.dispatchExits()

	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)

	if err := os.MkdirAll(filepath.Dir(SocketPath), 0o755); err != nil {
		return err
	}
	os.Remove(SocketPath)
	ln, err := net.Listen("unix", SocketPath)
	if err != nil {
		return err
	}
	go s.serve(ln)

	for _, u := range s.order {
		if err := s.start(u); err != nil {
			fmt.Fprintf(os.Stderr, "node-supervisor: %v\n", err)
			break // the harness sees the failed unit in status and reports its log
		}
	}
	fmt.Fprintln(os.Stderr, "node-supervisor: started")
	<-term
	s.shutdown()
	return nil
}

// reap collects every exited child of PID 1.
func (s *supervisor) reap(chld <-chan os.Signal) {
	for range chld {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
			s.reaped <- reapEvent{pid, ws}
		}
	}
}

func (s *supervisor) dispatchExits() {
	for ev := range s.reaped {
		for _, u := range s.order {
			u.mu.Lock()
			if u.pid == ev.pid && u.exited != nil {
				u.exit = describeStatus(ev.status)
				if u.state == "stopping" {
					u.state = "inactive"
				} else {
					u.state = "failed"
				}
				close(u.exited)
				u.exited = nil
				u.pid = 0
			}
			u.mu.Unlock()
		}
	}
}

func describeStatus(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return fmt.Sprintf("killed by signal %d", ws.Signal())
	}
	return fmt.Sprintf("exited with status %d", ws.ExitStatus())
}

func (s *supervisor) start(u *unit) error {
	u.ops.Lock()
	defer u.ops.Unlock()
	return s.startLocked(u)
}

func (s *supervisor) startLocked(u *unit) error {
	u.mu.Lock()
	if u.state == "active" || u.state == "starting" {
		u.mu.Unlock()
		return nil
	}
	u.mu.Unlock()
	log, err := os.OpenFile(u.cfg.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "----- node-supervisor: starting %s at %s\n", u.cfg.Name, time.Now().UTC().Format(time.RFC3339Nano))
	devnull, _ := os.Open(os.DevNull)
	exited := make(chan struct{})
	u.mu.Lock()
	// Forked with the lock held so that the reaper cannot see the pid before it is recorded.
	pid, err := syscall.ForkExec(u.cfg.Argv[0], u.cfg.Argv, &syscall.ProcAttr{
		Env:   u.cfg.Env,
		Files: []uintptr{devnull.Fd(), log.Fd(), log.Fd()},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err == nil {
		u.pid, u.state, u.exited, u.exit = pid, "starting", exited, ""
		u.starts++
	} else {
		u.state, u.exit = "failed", "could not start: "+err.Error()
	}
	u.mu.Unlock()
	log.Close()
	devnull.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", u.cfg.Name, err)
	}
	if err := waitReady(u.cfg, exited); err != nil {
		return fmt.Errorf("%s: %w", u.cfg.Name, err)
	}
	u.mu.Lock()
	if u.state == "starting" {
		u.state = "active"
	}
	u.mu.Unlock()
	return nil
}

func waitReady(c UnitConfig, exited <-chan struct{}) error {
	timeout := time.Duration(c.ReadyTimeoutMs) * time.Millisecond
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	deadline := time.Now().Add(timeout)
	client := http.Client{Timeout: time.Second}
	for {
		select {
		case <-exited:
			return fmt.Errorf("exited before it was ready")
		default:
		}
		ready := false
		switch {
		case c.ReadyUnix != "":
			if conn, err := net.DialTimeout("unix", c.ReadyUnix, time.Second); err == nil {
				conn.Close()
				ready = true
			}
		case c.ReadyHTTP != "":
			if r, err := client.Get(c.ReadyHTTP); err == nil {
				r.Body.Close()
				ready = r.StatusCode == http.StatusOK
			}
		default:
			ready = true
		}
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within %s", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *supervisor) stopLocked(u *unit) {
	u.mu.Lock()
	pid, exited := u.pid, u.exited
	if exited == nil {
		u.mu.Unlock()
		return
	}
	u.state = "stopping"
	u.mu.Unlock()
	// The main process only, like KillMode=process in containerd.service: the shims and the pods live on.
	syscall.Kill(pid, syscall.SIGTERM)
	grace := time.Duration(u.cfg.StopTimeoutMs) * time.Millisecond
	if grace == 0 {
		grace = 10 * time.Second
	}
	select {
	case <-exited:
	case <-time.After(grace):
		syscall.Kill(pid, syscall.SIGKILL)
		<-exited
	}
}

func (s *supervisor) restart(u *unit) error {
	u.ops.Lock()
	defer u.ops.Unlock()
	s.stopLocked(u)
	u.mu.Lock()
	delay := u.delayMs
	// Stopped on request: not a failure, and not "inactive" (which the harness takes for a dead unit).
	u.state = "restarting"
	u.mu.Unlock()
	time.Sleep(time.Duration(delay) * time.Millisecond)
	return s.startLocked(u)
}

func (s *supervisor) shutdown() {
	for i := len(s.order) - 1; i >= 0; i-- {
		u := s.order[i]
		u.ops.Lock()
		s.stopLocked(u)
		u.ops.Unlock()
	}
	// Everything else in the node's PID namespace: shims, containers, stray helpers.
	syscall.Kill(-1, syscall.SIGKILL)
	time.Sleep(200 * time.Millisecond)
}

func (s *supervisor) serve(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			var r request
			if err := json.NewDecoder(conn).Decode(&r); err != nil {
				return
			}
			json.NewEncoder(conn).Encode(s.handle(r))
		}()
	}
}

func (s *supervisor) handle(r request) answer {
	switch r.Cmd {
	case "systemctl":
		started := time.Now()
		a, delay := s.systemctl(r.Args)
		s.logCall(r.Args, a, started, delay)
		return a
	case "delay":
		u, ok := s.units[r.Unit]
		if !ok {
			return answer{Code: 1, Stderr: "no unit " + r.Unit}
		}
		u.mu.Lock()
		u.delayMs = r.Ms
		u.mu.Unlock()
		return answer{}
	case "status":
		var out []unitStatus
		for _, u := range s.order {
			u.mu.Lock()
			out = append(out, unitStatus{Name: u.cfg.Name, State: u.state, Pid: u.pid, Starts: u.starts, Exit: u.exit})
			u.mu.Unlock()
		}
		return answer{Units: out}
	}
	return answer{Code: 2, Stderr: "unknown command " + r.Cmd}
}

// systemctl answers the subset of systemctl the installer uses, with systemd's exit codes.
func (s *supervisor) systemctl(args []string) (answer, int) {
	if len(args) != 2 {
		return answer{Code: 1, Stderr: fmt.Sprintf("systemctl (knawd test node shim): unsupported: %q\n", args)}, 0
	}
	verb, name := args[0], unitName(args[1])
	u, ok := s.units[name]
	if !ok {
		switch verb {
		case "cat":
			return answer{Code: 1, Stderr: fmt.Sprintf("No files found for %s.service.\n", name)}, 0
		case "is-active":
			return answer{Code: 4, Stdout: "inactive\n"}, 0
		}
		return answer{Code: 5, Stderr: fmt.Sprintf("Failed to %s %s.service: Unit %s.service not found.\n", verb, name, name)}, 0
	}
	switch verb {
	case "restart":
		u.mu.Lock()
		delay := u.delayMs
		u.mu.Unlock()
		if err := s.restart(u); err != nil {
			return answer{Code: 1, Stderr: fmt.Sprintf("Job for %s.service failed: %v\n", name, err)}, delay
		}
		return answer{}, delay
	case "is-active":
		u.mu.Lock()
		defer u.mu.Unlock()
		if u.state == "active" {
			return answer{Stdout: "active\n"}, 0
		}
		return answer{Code: 3, Stdout: u.state + "\n"}, 0
	case "cat":
		return answer{Stdout: fmt.Sprintf("# /run/knawd-node/%s.service (knawd test node: supervised by PID 1)\n[Service]\nExecStart=%q\n", name, u.cfg.Argv)}, 0
	}
	return answer{Code: 1, Stderr: fmt.Sprintf("systemctl (knawd test node shim): unsupported: %q\n", args)}, 0
}

type callRecord struct {
	Start   string   `json:"start"`
	Ms      int64    `json:"ms"`
	Args    []string `json:"args"`
	Code    int      `json:"code"`
	Stderr  string   `json:"stderr,omitempty"`
	DelayMs int      `json:"delayMs,omitempty"`
}

func (s *supervisor) logCall(args []string, a answer, started time.Time, delay int) {
	line, _ := json.Marshal(callRecord{started.UTC().Format(time.RFC3339Nano), time.Since(started).Milliseconds(), args, a.Code, a.Stderr, delay})
	s.logMu.Lock()
	defer s.logMu.Unlock()
	s.logF.Write(append(line, '\n'))
	s.logF.Sync()
}
