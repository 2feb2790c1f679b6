//! (being written) The CNI plugin face of nsnet.

/// Entry point when the binary runs with `CNI_COMMAND` set.
pub fn main() -> std::process::ExitCode {
    eprintln!("nsnet: the CNI plugin is not built yet");
    std::process::ExitCode::FAILURE
}
