;; A WASI command that never returns (a busy loop): the handler tests end it with SIGTERM.
(module
  (memory (export "memory") 1)
  (func (export "_start") (loop (br 0))))
