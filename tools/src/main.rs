//! The `rootcause` binary: everything it does lives in the library.

use clap::Parser;

/// mimalloc rather than glibc's malloc. Under a steady ingest glibc's per-thread arenas kept
/// what one thread freed for that arena, and the server's RSS was about four times its live
/// heap (heaptrack: 240 MB peak heap where RSS was 0.9-1.0 GB); trimming the heap every 10 s
/// or capping the arenas at two brought RSS down but cost up to 37 % of ingest throughput.
/// `bench/soak.py` at 6,000 alerts/s for 3 minutes: RSS median 1,032 MB with glibc and a
/// trim, 433 MB with mimalloc; `bench ingest` on SQLite: 47,350 alerts/s with glibc, 50,475
/// with mimalloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    rootcause_cli::cli::Cli::parse().run()
}
