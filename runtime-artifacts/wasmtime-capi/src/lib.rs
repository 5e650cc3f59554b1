//! Re-export every `#[no_mangle] extern "C"` symbol of the wasmtime C API so
//! that they end up in the cdylib (`libwasmtime.so`).
pub use wasmtime_c_api::*;
