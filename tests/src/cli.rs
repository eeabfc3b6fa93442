//! Runs a `tenant` binary (the stock one, or an application's own built with its models) as
//! a child process, without a terminal, and checks what every run must hold.

use std::path::Path;
use std::process::{Command, Output};

/// The environment variables the CLI reads; [`Cli::new`] clears them all, so a test sets
/// exactly the ones it means.
const CLI_ENV: [&str; 4] = [
    "DATABASE_URL",
    "TENANT_REGISTRY",
    "TENANT_MIGRATIONS",
    "TENANT_SNAPSHOT_DIR",
];

/// How a run ended: its exit code and its output.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Run {
    /// The run of a finished process. Panics if it was killed, wrote something that is not
    /// UTF-8, or used the library's words with the operator (the CLI talks about tenants and
    /// the registry, never about an `Allowlist`).
    pub fn from_output(output: Output) -> Run {
        let run = Run {
            code: output.status.code().expect("exited, not killed"),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        };
        for text in [&run.stdout, &run.stderr] {
            assert!(
                !text.to_lowercase().contains("allowlist"),
                "library words in the CLI's output: {run:?}"
            );
        }
        run
    }
}

/// A command line of a `tenant` binary, run with [`Cli::run`].
///
/// ```no_run
/// let run = tenant_tests::Cli::new("target/debug/tenant")
///     .env("DATABASE_URL", "postgres://postgres@127.0.0.1/postgres")
///     .run(&["tenants", "list"]);
/// assert_eq!(run.code, 0, "{run:?}");
/// ```
pub struct Cli {
    command: Command,
}

impl Cli {
    /// The binary at `exe` (`env!("CARGO_BIN_EXE_<name>")`), with none of the CLI's
    /// environment variables inherited.
    pub fn new(exe: impl AsRef<Path>) -> Cli {
        let mut command = Command::new(exe.as_ref());
        for name in CLI_ENV {
            command.env_remove(name);
        }
        Cli { command }
    }

    /// Sets one environment variable.
    pub fn env(mut self, name: &str, value: impl AsRef<std::ffi::OsStr>) -> Cli {
        self.command.env(name, value);
        self
    }

    /// Runs in `dir` instead of the test's working directory.
    pub fn current_dir(mut self, dir: &Path) -> Cli {
        self.command.current_dir(dir);
        self
    }

    /// Runs `<binary> <args>` to its end, stdin closed.
    pub fn run(mut self, args: &[&str]) -> Run {
        let output = self
            .command
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("the tenant binary runs");
        Run::from_output(output)
    }
}

/// A fresh copy (files only, no subdirectories) of the directory `from` at `to`: whatever was
/// at `to` is removed first. For tests that add files to a copy of committed migrations.
pub fn fresh_copy(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}
