//! The headless CLI: `scorelab train | sample | likelihood | eval | sweep | flow`. With no subcommand the
//! native binary opens the desktop window instead (see `main.rs`).
//!
//! Every failure is one line on stderr (`error: …`) and exit code 2; results are files
//! plus a one-line JSON summary on stdout.

mod args;
mod commands;
mod io;

use std::process::ExitCode;

use clap::Parser;

pub use args::{Backend, Cli, Command, DataArgs};
pub use io::{load_mixture, parse_points_csv};

use crate::engine::batch::Batch;

/// A CLI failure: printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// File I/O.
    #[error("cannot {action} '{path}': {source}")]
    Io {
        /// "read" / "write".
        action: &'static str,
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The engine refused or failed.
    #[error("{0}")]
    Engine(#[from] crate::engine::EngineError),
    /// Anything else, already phrased.
    #[error("{0}")]
    Msg(String),
}

fn msg(s: impl Into<String>) -> CliError {
    CliError::Msg(s.into())
}

/// Open the engine a subcommand asked for.
fn open(backend: Backend) -> Result<Batch, CliError> {
    if backend == Backend::Gpu {
        ensure_runtime_dir();
    }
    Ok(Batch::new(backend.into())?)
}

fn ensure_runtime_dir() {
    // Mesa's Vulkan drivers probe Wayland and print "error: XDG_RUNTIME_DIR is invalid or not
    // set" on headless machines; give them a private runtime dir so the only errors a user
    // sees are ours. (Single-threaded here: nothing else reads the environment concurrently.)
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        let dir = std::env::temp_dir().join(format!("scorelab-runtime-{}", std::process::id()));
        if std::fs::create_dir_all(&dir).is_ok() {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
            }
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
        }
    }
}

/// Run one subcommand; returns its JSON summary.
pub fn run(cmd: &Command) -> Result<serde_json::Value, CliError> {
    match cmd {
        Command::Train(a) => commands::train(a),
        Command::Sample(a) => commands::sample(a),
        Command::Likelihood(a) => commands::likelihood(a),
        Command::Eval(a) => commands::eval(a),
        Command::Sweep(a) => commands::sweep(a),
        Command::Flow(a) => commands::flow(a),
        Command::Bench { quick } => {
            ensure_runtime_dir();
            crate::bench::run(*quick).map_err(|e| msg(format!("benchmark failed: {e}")))
        }
    }
}

/// Parse arguments and run. `open_window` is called when no subcommand is given, with the
/// CPU engine's worker count (`--workers`).
pub fn main_with(open_window: impl FnOnce(usize) -> Result<(), String>) -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        eprintln!("error: internal error: {what}");
    }));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if e.use_stderr() => {
            // clap's message spans several lines; join the complaint (everything before the
            // blank line / usage) into one.
            let text = e.render().to_string();
            let complaint: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
                .collect();
            let line = complaint.join(" ");
            eprintln!("error: {} (see --help)", line.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let result = match &cli.command {
        None => open_window(cli.workers)
            .map(|_| serde_json::Value::Null)
            .map_err(CliError::Msg),
        Some(cmd) => run(cmd),
    };
    match result {
        Ok(serde_json::Value::Null) => ExitCode::SUCCESS,
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
