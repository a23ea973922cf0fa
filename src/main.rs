//! The `hearth` binary: see [`hearth::cli`].

fn main() -> std::process::ExitCode {
    match hearth::cli::parse() {
        Ok(cli) => hearth::cli::run(cli),
        Err(code) => code,
    }
}
