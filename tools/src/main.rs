//! The `rootcause` binary: everything it does lives in the library.

use clap::Parser;

/// jemalloc, with background threads that give freed memory back to the system after a second
/// of disuse (`dirty_decay_ms:1000,muzzy_decay_ms:0`, set in `.cargo/config.toml`; override
/// with `_RJEM_MALLOC_CONF`). Measured with `rootcause bench memory` (10,000 services, 100 k
/// then 1 M firing alerts, all resolved, then forgotten) on this project's 2-core machine:
/// mimalloc 67-125 MB empty, 230-297 MB at 100 k, 393-531 MB resolved, 214-237 MB forgotten
/// (it gives memory back only when a thread allocates again, and a server that went quiet does
/// not); jemalloc 57, 198, 331 and 188 MB. Before mimalloc, glibc's malloc held about four
/// times the live heap in its per-thread arenas.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    rootcause_cli::cli::Cli::parse().run()
}
