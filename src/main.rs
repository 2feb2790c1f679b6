//! The `nsnet` binary: the CLI, or the CNI plugin when a runtime runs it with
//! `CNI_COMMAND` set (installed as `/opt/cni/bin/nsnet`, a copy or a link).

mod cli;

fn main() -> std::process::ExitCode {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == nsnet::pause::ARG)
    {
        nsnet::pause::run();
    }
    if std::env::var_os("CNI_COMMAND").is_some() {
        return nsnet::cni::main();
    }
    cli::main()
}
