//! `tenant`: the command line over `tenant_runtime`'s lifecycle — provision, retire,
//! restore and purge tenant schemas, migrate them all, N at a time, and show their status.
//!
//! Migrations are read from a directory at run time (`--migrations DIR`) and checked by the
//! same rules (the `tenant-sql` crate) as `embed_migrations!` checks them while compiling,
//! so one directory serves both the application and this command. See the README's CLI section.

mod archive;
mod check;
mod cli;
mod commands;
mod show;
mod wording;

use std::process::ExitCode;

use cli::Cli;

/// Why the command did not succeed, and the exit code that says so.
#[derive(Debug)]
pub enum Failure {
    /// Exit 1: a tenant operation was refused or failed.
    Refused(String),
    /// Exit 1: some tenants failed to migrate (already reported).
    TenantsFailed,
    /// Exit 2: bad arguments or configuration.
    Usage(String),
    /// Exit 3: the database could not be reached.
    Unreachable(String),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Refused(_) | Failure::TenantsFailed => 1,
            Failure::Usage(_) => 2,
            Failure::Unreachable(_) => 3,
        }
    }
}

impl From<tenant_runtime::Error> for Failure {
    fn from(e: tenant_runtime::Error) -> Failure {
        use tenant_runtime::error::{AllowlistError, LifecycleError, MigrateError};
        use tenant_runtime::Error as E;
        let message = wording::operator_message(&e);
        let usage = match &e {
            E::InvalidSchemaName(_)
            | E::Allowlist(AllowlistError::ReservedSchema { .. })
            | E::InvalidTenantKey { .. }
            | E::InvalidRoleName { .. }
            | E::Lifecycle(LifecycleError::RegistryNotInstalled { .. }) => true,
            E::Migrate(m) => matches!(
                **m,
                MigrateError::Invalid { .. } | MigrateError::UnknownVersion { .. }
            ),
            _ => false,
        };
        if usage {
            Failure::Usage(message)
        } else {
            Failure::Refused(message)
        }
    }
}

fn main() -> ExitCode {
    // Usage errors exit with 2 here (clap's convention, and ours).
    let cli = Cli::parse_with_env();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            match &failure {
                Failure::Refused(m) | Failure::Usage(m) | Failure::Unreachable(m) => {
                    eprintln!("error: {m}")
                }
                Failure::TenantsFailed => {}
            }
            ExitCode::from(failure.exit_code())
        }
    }
}
