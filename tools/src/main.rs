//! The `rootcause` binary: everything it does lives in the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    rootcause_cli::cli::Cli::parse().run()
}
