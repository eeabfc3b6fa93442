//! `tenant`, the stock binary: every command but `migrate generate`, which needs the
//! application's models, and a `tenant check` against the migrations directory. An
//! application builds its own `tenant` binary with its models in three lines: see
//! [`tenant_cli::App`] and the README's migration workflow.

fn main() -> std::process::ExitCode {
    tenant_cli::App::new().main()
}
