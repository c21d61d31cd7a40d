//! Native entry: `scorelab` opens the desktop window; `scorelab <subcommand>` runs the CLI.

fn main() -> std::process::ExitCode {
    scorelab::cli::main_with(scorelab::app::run_native)
}
