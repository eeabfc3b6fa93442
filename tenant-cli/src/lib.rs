//! `tenant`: the command line over `tenant_runtime`'s lifecycle — provision, retire,
//! restore and purge tenant schemas, migrate them all, N at a time, check them for drift,
//! and (in a binary built with the application's models) generate the next migration.
//!
//! Migrations are read from a directory at run time (`--migrations DIR`) and checked by the
//! same rules (the `tenant-sql` crate) as `embed_migrations!` checks them while compiling,
//! so one directory serves both the application and this command. See the README's CLI section.
//!
//! The crate is the stock `tenant` binary and the one door an application uses to build its
//! own, with its models (Django's `manage.py`, Alembic's `env.py`): [`App`].
//!
//! ```no_run
//! // src/bin/tenant.rs of the application: `cargo run --bin tenant -- migrate generate add_pinned`
//! use tenant_runtime::{Model, ModelSet};
//!
//! #[derive(Model)]
//! #[tenant(table = "notes")]
//! struct Note {
//!     #[tenant(primary_key, identity)]
//!     id: i64,
//!     pinned: bool,
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     tenant_cli::App::new()
//!         .with_models(ModelSet::new().with::<Note>())
//!         .main()
//! }
//! ```
#![warn(missing_docs)]

mod archive;
mod check;
mod cli;
mod commands;
mod generate;
mod show;
mod wording;

use std::process::ExitCode;

use tenant_runtime::ModelSet;

use cli::Cli;

/// The `tenant` command line, with or without the application's models.
///
/// Without models (the stock binary, `App::new().main()`) it does everything but `migrate
/// generate` (exit 2, saying how to build a binary with models), and `tenant check` compares
/// the tenant schemas with what the migrations directory builds. With
/// [`with_models`](App::with_models), `migrate generate NAME` writes the next migration file
/// from the models, and `tenant check` compares every tenant schema with the models.
///
/// ```no_run
/// use tenant_runtime::{Model, ModelSet};
///
/// #[derive(Model)]
/// #[tenant(table = "notes")]
/// struct Note {
///     #[tenant(primary_key, identity)]
///     id: i64,
/// }
///
/// fn main() -> std::process::ExitCode {
///     tenant_cli::App::new()
///         .with_models(ModelSet::new().with::<Note>())
///         .main()
/// }
/// ```
#[derive(Debug, Default)]
pub struct App {
    models: Option<ModelSet>,
}

impl App {
    /// The command line without models: what the stock `tenant` binary runs.
    ///
    /// ```no_run
    /// fn main() -> std::process::ExitCode {
    ///     tenant_cli::App::new().main()
    /// }
    /// ```
    pub fn new() -> App {
        App::default()
    }

    /// The application's models: `migrate generate` writes the migration that builds them,
    /// and `check` compares every tenant schema with them.
    ///
    /// ```
    /// use tenant_runtime::{Model, ModelSet};
    ///
    /// #[derive(Model)]
    /// #[tenant(table = "notes")]
    /// struct Note {
    ///     #[tenant(primary_key, identity)]
    ///     id: i64,
    /// }
    ///
    /// let app = tenant_cli::App::new().with_models(ModelSet::new().with::<Note>());
    /// # drop(app);
    /// ```
    pub fn with_models(mut self, models: ModelSet) -> App {
        self.models = Some(models);
        self
    }

    /// Parses the process's command line and environment, runs the command, and returns
    /// its exit code (0 success, 1 refused or failed, 2 usage or configuration, 3 database
    /// unreachable; `tenant --help` lists them). Return it from `main`.
    ///
    /// ```no_run
    /// fn main() -> std::process::ExitCode {
    ///     tenant_cli::App::new().main()
    /// }
    /// ```
    pub fn main(self) -> ExitCode {
        // Usage errors exit with 2 here (clap's convention, and ours).
        let cli = Cli::parse_with_env(self.models.is_some());
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
        match runtime.block_on(commands::run(cli, self.models.as_ref())) {
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
}

/// Why the command did not succeed, and the exit code that says so.
#[derive(Debug)]
pub(crate) enum Failure {
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
