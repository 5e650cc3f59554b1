;; Minimal WASI (preview1) program: writes one line to stdout and returns.
;; Used by smoke-test.sh to prove crun's wasmtime handler really runs a module.
;; Assemble with: wat2wasm hello.wat -o hello.wasm
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; iovec { buf = 16, buf_len = 25 } at offset 0
  (data (i32.const 0) "\10\00\00\00\19\00\00\00")
  ;; 25 bytes: the 24-character text plus a newline
  (data (i32.const 16) "hello from wasm via crun\n")
  (func (export "_start")
    ;; fd 1 (stdout), 1 iovec at 0, bytes-written stored at 8
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
