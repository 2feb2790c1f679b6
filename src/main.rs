//! The `nsnet` binary: the CLI (and, later, the CNI plugin) over the library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
