//! The `rootcause` binary: everything it does lives in the library.

use clap::Parser;

/// jemalloc, with background threads that give freed memory back to the system after a second
/// of disuse (`dirty_decay_ms:1000,muzzy_decay_ms:0`, set in `.cargo/config.toml`; override
/// with `MALLOC_CONF`), and in place of the C library's `malloc`, so SQLite's page cache is in
/// the same heap. Measured with `rootcause bench memory` (10,000 services, 100 k then 1 M firing
/// alerts, all resolved, then forgotten) on this project's 2-core machine, in MB: mimalloc
/// 67-125 empty, 230-297 at 100 k, 393-531 resolved, 214-237 forgotten (it gives memory back
/// only when a thread allocates again, and a server that went quiet does not); jemalloc for Rust
/// alone 53, 179, 348, 180; jemalloc for everything 51, 136, 259, 108. Before mimalloc, glibc's
/// malloc held about four times the live heap in its per-thread arenas.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    rootcause_cli::cli::Cli::parse().run()
}
