//! The command line: `tenant [OPTIONS] <COMMAND>`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// Exit codes, shown in `--help` and in the README's CLI section.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  a tenant operation was refused or failed, or some tenants failed to migrate
  2  usage or configuration error: bad arguments, invalid names, invalid migration files,
     no database URL, registry not installed, `migrate generate` in a binary without models
  3  the database could not be reached";

/// The directory of migration files when neither `--migrations` nor `TENANT_MIGRATIONS` names one.
pub const DEFAULT_MIGRATIONS_DIR: &str = "migrations";

/// Provision, retire, restore, purge and migrate the tenant schemas of a PostgreSQL database.
//
// The environment variables are read by [`Cli::apply_env`], not by clap's `env`: clap counts a
// value from the environment as typed, so every usage line of an error would show
// `--database-url <URL>` (and `--registry`, `--migrations`) as if they were required.
#[derive(Debug, Parser)]
#[command(name = "tenant", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// PostgreSQL connection URL [env: DATABASE_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,

    /// Schema of the tenant registry table (`<schema>.tenants`) [env: TENANT_REGISTRY]
    /// [default: tenant_registry]
    #[arg(long, value_name = "SCHEMA", global = true)]
    pub registry: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses the command line, then fills what it left out from the environment.
    /// `with_models`: the binary was built with the application's models, so `--help` says
    /// that `check` compares with them.
    pub fn parse_with_env(with_models: bool) -> Cli {
        let matches = Cli::command_for(with_models).get_matches();
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        cli.apply_env(|name| std::env::var(name).ok());
        cli
    }

    /// The clap command, its `check` help worded for a binary with or without models.
    pub fn command_for(with_models: bool) -> clap::Command {
        let command = Cli::command();
        if !with_models {
            return command;
        }
        command.mut_subcommand("check", |check| {
            check.about(CHECK_AGAINST_MODELS).long_about(None)
        })
    }

    /// Fills each option the command line left out from its environment variable (`env`
    /// looks one up; an empty value counts as unset), then the registry's default.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) {
        let env = |name: &str| env(name).filter(|v| !v.is_empty());
        if self.database_url.is_none() {
            self.database_url = env("DATABASE_URL");
        }
        let registry = self.registry.take().or_else(|| env("TENANT_REGISTRY"));
        self.registry = Some(registry.unwrap_or_else(|| DEFAULT_REGISTRY.to_owned()));
        if let Command::Tenants(TenantsCommand::Purge {
            snapshot_dir,
            no_snapshot: false,
            ..
        }) = &mut self.command
        {
            if snapshot_dir.is_none() {
                *snapshot_dir = env("TENANT_SNAPSHOT_DIR").map(PathBuf::from);
            }
        }
        let migrations = match &mut self.command {
            Command::Tenants(TenantsCommand::Create { migrations, .. })
            | Command::Tenants(TenantsCommand::Import { migrations, .. })
            | Command::Tenants(TenantsCommand::Clone { migrations, .. })
            | Command::Tenants(TenantsCommand::Move { migrations, .. }) => migrations,
            Command::Migrate(args) => args.migrations_mut(),
            Command::Status(args) => &mut args.migrations,
            Command::Check(args) => &mut args.migrations,
            Command::Tenants(_) => return,
        };
        if migrations.migrations.is_none() {
            migrations.migrations = env("TENANT_MIGRATIONS").map(PathBuf::from);
        }
    }

    /// The registry schema: `--registry`, else `TENANT_REGISTRY`, else `tenant_registry`.
    pub fn registry(&self) -> &str {
        self.registry.as_deref().unwrap_or(DEFAULT_REGISTRY)
    }
}

/// The registry schema when neither `--registry` nor `TENANT_REGISTRY` names one.
pub const DEFAULT_REGISTRY: &str = "tenant_registry";

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List, create, drop (retire), restore and purge tenants.
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// Apply pending migrations to tenant schemas (or go to a version, or run the shared
    /// migrations); `history`, `current` and `stamp` read and set the recorded versions.
    Migrate(MigrateArgs),
    /// Show every tenant's state and migration version.
    Status(StatusArgs),
    /// Check every active tenant's schema against what the migrations build: the applied
    /// version, the migrations it lacks, every difference. Exit 1 when any tenant differs.
    /// (A `tenant` binary built with the application's models checks against the models.)
    Check(CheckArgs),
}

/// The `about` of `check` in a binary built with the application's models.
const CHECK_AGAINST_MODELS: &str = "\
Check every active tenant's schema against this binary's models: the applied version, the \
migrations it lacks, every difference from the models. Exit 1 when any tenant differs.";

/// How `tenants list` and `status` print their results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// A table for people.
    #[default]
    Text,
    /// One JSON document on stdout (its shape is in `--help`).
    Json,
}

/// The `tenants` commands.
#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Create the registry schema and table if missing (`create` does it too).
    Init,
    /// List registered tenants (active and retired).
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t, long_help = LIST_JSON)]
        format: Format,
    },
    /// Provision a tenant: schema, grants, its tables as the migrations build them (when a
    /// migrations directory is named or ./migrations exists), registry row, in one
    /// transaction.
    Create {
        /// Tenant key (what requests carry).
        key: String,
        /// Schema name: `[a-z_][a-z0-9_]*`, at most 63 bytes, not `public` or `pg_*`.
        schema: String,
        /// Role to grant USAGE and CREATE on the schema (and DML on its tables) to.
        #[arg(long, value_name = "ROLE")]
        grant_to: Option<String>,
        /// Require the migrations directory (exit 2 without one), and bring a tenant that was
        /// provisioned before up to date.
        #[arg(long)]
        migrate: bool,
        #[command(flatten)]
        migrations: MigrationsArgs,
    },
    /// Retire a tenant (phase one of teardown): rename its schema to
    /// `<schema>_deleted_<yyyymmdd>`; it stops resolving. Undo with `restore`.
    Drop {
        /// Tenant key.
        key: String,
    },
    /// Undo `drop`: rename the schema back and make the tenant active again.
    Restore {
        /// Tenant key.
        key: String,
    },
    /// Export a tenant's data into one archive file: every table of its schema, from one
    /// consistent snapshot (the tenant keeps serving), with row counts and SHA-256 checksums.
    Export {
        /// Tenant key (an active tenant).
        key: String,
        /// The archive file to write (replaced only once the archive is complete).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Create a new tenant from an archive: provision it, apply the migrations (which make its
    /// tables), load and verify the rows, all in one transaction: a damaged or mismatched
    /// archive is refused and creates nothing.
    Import {
        /// Key of the new tenant.
        #[arg(long, value_name = "KEY")]
        key: String,
        /// Schema of the new tenant.
        #[arg(long, value_name = "SCHEMA")]
        schema: String,
        /// The archive file (written by `tenant tenants export`).
        file: PathBuf,
        /// Role to grant USAGE and CREATE on the schema (and DML on its tables) to.
        #[arg(long, value_name = "ROLE")]
        grant_to: Option<String>,
        #[command(flatten)]
        migrations: MigrationsArgs,
    },
    /// Copy a tenant's data into a new tenant of the same database, without a file, in one
    /// transaction (the source keeps serving); the new tenant's tables come from the
    /// migrations.
    Clone {
        /// Key of the tenant to copy (an active tenant).
        source: String,
        /// Key of the new tenant.
        #[arg(long, value_name = "KEY")]
        key: String,
        /// Schema of the new tenant.
        #[arg(long, value_name = "SCHEMA")]
        schema: String,
        /// Role to grant USAGE and CREATE on the schema (and DML on its tables) to.
        #[arg(long, value_name = "ROLE")]
        grant_to: Option<String>,
        #[command(flatten)]
        migrations: MigrationsArgs,
    },
    /// Move a tenant to another database (its own, or back to a shared one) while it keeps
    /// serving: its writes wait while its tables are copied and verified, then fail with
    /// SQLSTATE 40001 (retry) until the application routes to the new database; the routes
    /// table is updated in the same instant, and the old schema is retired, not dropped.
    Move {
        /// Tenant key (an active tenant of this database).
        key: String,
        /// URL of the target database (its registry is created there if missing).
        #[arg(long, value_name = "URL")]
        to: String,
        /// The routes table of this database, `SCHEMA.TABLE` with columns `tenant_key` and
        /// `database_url` (the table the application reloads its routes from).
        #[arg(long, value_name = "SCHEMA.TABLE", value_parser = parse_table)]
        routes_table: (String, String),
        /// How long to wait for the tenant's open write transactions before giving up
        /// (nothing is changed then).
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
        lock_timeout: Duration,
        #[command(flatten)]
        migrations: MigrationsArgs,
    },
    /// Phase two of teardown: drop the schemas of tenants retired longer ago than the grace
    /// period.
    ///
    /// When stdin is a terminal, purge lists the tenants it would drop and asks before
    /// dropping them (`--yes` skips the question). When stdin is not a terminal (scripts,
    /// cron, CI) it does not ask.
    Purge {
        /// Grace period: a duration such as 30d, 12h, 90m or 1h30m (units s, m, h, d, w,
        /// and the longer names humantime knows); 0 purges every retired tenant.
        #[arg(
            long,
            value_name = "GRACE",
            value_parser = parse_grace,
            allow_hyphen_values = true
        )]
        older_than: Grace,
        /// List the tenants that would be purged, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask for confirmation on a terminal.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Before dropping each schema, export it into this directory (created if missing)
        /// as `<retired schema>.tenant`; a schema whose snapshot cannot be written is not
        /// dropped. Restore a purged tenant with `tenant tenants import`.
        /// [env: TENANT_SNAPSHOT_DIR]
        #[arg(long, value_name = "DIR", conflicts_with = "no_snapshot")]
        snapshot_dir: Option<PathBuf>,
        /// Drop without a snapshot, even if TENANT_SNAPSHOT_DIR names a directory.
        #[arg(long)]
        no_snapshot: bool,
    },
}

/// Where the migrations are and how to fill their named slots.
#[derive(Debug, Args)]
pub struct MigrationsArgs {
    /// Directory of migration files (`<version>_<name>.sql`), checked like `embed_migrations!`
    /// [env: TENANT_MIGRATIONS] [default: migrations]
    #[arg(long, value_name = "DIR")]
    pub migrations: Option<PathBuf>,
    /// A named slot the migrations use, and the schema that fills it: --slot shared=public.
    #[arg(long = "slot", value_name = "NAME=SCHEMA", value_parser = parse_slot)]
    pub slots: Vec<(String, String)>,
}

impl MigrationsArgs {
    /// The directory named by `--migrations` or `TENANT_MIGRATIONS`, else `migrations`.
    pub fn dir(&self) -> &Path {
        self.migrations
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_MIGRATIONS_DIR))
    }

    /// Whether the operator named the directory (`--migrations` or `TENANT_MIGRATIONS`)
    /// rather than relying on the default.
    pub fn is_explicit(&self) -> bool {
        self.migrations.is_some()
    }
}

/// Arguments of `migrate`: with no subcommand it applies migrations.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    group = clap::ArgGroup::new("which").required(true).multiple(true).args(["all", "tenant", "shared"])
)]
pub struct MigrateArgs {
    #[command(subcommand)]
    pub command: Option<MigrateCommand>,
    /// Migrate every active tenant of the registry.
    #[arg(long, conflicts_with = "tenant")]
    pub all: bool,
    /// Migrate only this tenant (repeatable).
    #[arg(long, value_name = "KEY")]
    pub tenant: Vec<String>,
    /// Run the shared migrations (those that name no {tenant}) once, recorded in the
    /// registry's schema; with --all or --tenant, before the tenants.
    #[arg(long)]
    pub shared: bool,
    /// Go to this version instead of the latest: up, or down through the migrations'
    /// `-- down` sections (0: roll every migration back).
    #[arg(long, value_name = "VERSION")]
    pub to: Option<u64>,
    /// Tenants migrated at once (one connection each).
    #[arg(long, short, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Only report what would be applied.
    #[arg(long)]
    pub dry_run: bool,
    /// Start no new tenant after the first failure.
    #[arg(long)]
    pub fail_fast: bool,
    #[command(flatten)]
    pub timeouts: TimeoutArgs,
    #[command(flatten)]
    pub migrations: MigrationsArgs,
}

impl MigrateArgs {
    /// The migrations options of whichever form was used.
    pub fn migrations_mut(&mut self) -> &mut MigrationsArgs {
        match &mut self.command {
            Some(MigrateCommand::History(a) | MigrateCommand::Current(a)) => &mut a.migrations,
            Some(MigrateCommand::Stamp(a)) => &mut a.migrations,
            Some(MigrateCommand::Generate(a)) => &mut a.migrations,
            None => &mut self.migrations,
        }
    }
}

/// The subcommands of `migrate`.
#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Each tenant's applied migrations (version, name, when) and pending ones.
    History(VersionsArgs),
    /// Each tenant's current version and pending count.
    Current(VersionsArgs),
    /// Record the migrations up to VERSION as applied without running them (adopt schemas
    /// built by hand); recorded versions above it are forgotten.
    Stamp(StampArgs),
    /// Write the next migration file: the SQL that turns what the existing migrations build
    /// into the application's models (only in a `tenant` binary the application builds with
    /// its models; see the README's migration workflow).
    #[command(long_about = GENERATE_LONG)]
    Generate(GenerateArgs),
}

/// `--help` of `migrate generate`.
const GENERATE_LONG: &str = "\
Write the next migration file: the SQL that turns what the existing migrations build into the \
application's models.

The existing migrations are applied to a scratch schema inside a transaction that is rolled \
back (nothing is left in the database), the result is compared with the models, and the file \
<next version>_<NAME>.sql is written into the migrations directory (created if missing: the \
first migration), never over an existing file. It prints the file's path, the differences it \
closes, and every CHOICE the file leaves to you (a column renamed, or dropped and another \
added): review the file, then apply it with `tenant migrate --all`. When the migrations \
already build the models it writes nothing and says so (exit 0).

Only a `tenant` binary built with the application's models can generate (a src/bin/tenant.rs \
calling tenant_cli::App::new().with_models(..).main(); see the README's migration workflow): \
the stock binary exits with 2.";

/// Arguments of `migrate generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Name of the migration, `[a-z0-9_]+` (e.g. add_due_days): the file is
    /// `<next version>_<NAME>.sql`.
    #[arg(value_parser = parse_migration_name)]
    pub name: String,
    #[command(flatten)]
    pub migrations: MigrationsArgs,
}

/// A migration name: what may follow `<version>_` in a migration file name (the rule of
/// `tenant-sql`, which the files are checked by).
pub fn parse_migration_name(s: &str) -> Result<String, String> {
    tenant_sql::parse_file_name(&format!("1_{s}.sql"))
        .map(|(_, name, _)| name)
        .map_err(|problem| format!("{problem} (the file is <next version>_<NAME>.sql)"))
}

/// Arguments of `migrate history` and `migrate current`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["all", "tenant"]))]
pub struct VersionsArgs {
    /// Every active tenant of the registry.
    #[arg(long)]
    pub all: bool,
    /// Only this tenant (repeatable).
    #[arg(long, value_name = "KEY")]
    pub tenant: Vec<String>,
    /// Connections used to read the versions.
    #[arg(long, short, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Output format.
    #[arg(long, value_enum, default_value_t, long_help = VERSIONS_JSON)]
    pub format: Format,
    #[command(flatten)]
    pub migrations: MigrationsArgs,
}

/// Arguments of `migrate stamp`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["all", "tenant"]))]
pub struct StampArgs {
    /// The version to record (0: forget every recorded migration).
    pub version: u64,
    /// Stamp every active tenant of the registry.
    #[arg(long)]
    pub all: bool,
    /// Stamp only this tenant (repeatable).
    #[arg(long, value_name = "KEY")]
    pub tenant: Vec<String>,
    /// Tenants stamped at once (one connection each).
    #[arg(long, short, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Only report what would be recorded.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub migrations: MigrationsArgs,
}

/// `--help` of `migrate history --format` and `migrate current --format`.
const VERSIONS_JSON: &str = "\
Output format: text or json (one JSON document on stdout).

The JSON shape (fields may be added, none is removed or changes meaning):
  {\"registry\": \"tenant_registry\", \"latest_version\": null | 3,
   \"tenants\": [{\"key\": \"acme\", \"schema\": \"tenant_acme\", \"current\": null | 2,
                \"pending\": [3],
                \"applied\": [{\"version\": 1, \"name\": \"create_customers\",
                             \"checksum\": \"9f2c...\", \"applied_at\": \"2026-04-21T12:00:00Z\"}],
                \"error\": null | \"why the tenant's versions could not be read\"}]}
`current` leaves out \"applied\". Tenants are sorted by key; times are UTC (RFC 3339).";

/// The bounded waits of each tenant's migration.
#[derive(Debug, Args)]
pub struct TimeoutArgs {
    /// How long a tenant waits for a lock (e.g. a table the application holds) before it
    /// fails, while the other tenants go on: 5s, 500ms, 1m; 0 waits without bound.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout, default_value = "5s")]
    pub lock_timeout: Duration,
    /// How long one statement of a migration may run before its tenant fails; 0: no bound.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout, default_value = "10m")]
    pub statement_timeout: Duration,
}

/// `0`, or a duration `humantime` reads (`5s`, `500ms`, `1m`).
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("{e}; use a duration such as 5s, 500ms or 1m, or 0 for no bound"))
}

/// Arguments of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Connections used to read the tenants' versions.
    #[arg(long, short, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Output format.
    #[arg(long, value_enum, default_value_t, long_help = STATUS_JSON)]
    pub format: Format,
    #[command(flatten)]
    pub migrations: MigrationsArgs,
}

/// Arguments of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Check only this tenant (repeatable); default: every active tenant of the registry.
    #[arg(long, value_name = "KEY")]
    pub tenant: Vec<String>,
    /// Connections reading the catalog at once (each reads 500 schemas per round trip).
    #[arg(long, short, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// Output format.
    #[arg(long, value_enum, default_value_t, long_help = crate::check::CHECK_JSON)]
    pub format: Format,
    #[command(flatten)]
    pub migrations: MigrationsArgs,
}

/// `--help` of `tenants list --format`: the JSON shape, which stays stable (fields may be
/// added, none removed or changed).
const LIST_JSON: &str = "\
Output format: text (a table) or json (one JSON document on stdout).

The JSON shape (fields may be added, none is removed or changes meaning):
  {\"registry\": \"tenant_registry\",
   \"tenants\": [{\"key\": \"acme\", \"schema\": \"tenant_acme\", \"state\": \"active\" | \"retired\",
                \"created_at\": \"2026-04-21T12:00:00Z\",
                \"retired_schema\": null | \"tenant_acme_deleted_20260421\",
                \"retired_at\": null | \"2026-04-21T12:00:00Z\",
                \"error\": null | \"why the registry row cannot be loaded\"}]}
Tenants are sorted by key; times are UTC (RFC 3339, whole seconds).";

/// `--help` of `status --format`.
const STATUS_JSON: &str = "\
Output format: text (a table) or json (one JSON document on stdout).

The JSON shape (fields may be added, none is removed or changes meaning):
  {\"registry\": \"tenant_registry\",
   \"migrations\": null | {\"dir\": \"migrations\", \"latest_version\": null | 3},
   \"tenants\": [{\"key\": \"acme\", \"schema\": \"tenant_acme\", \"state\": \"active\" | \"retired\",
                \"retired_schema\": null | \"tenant_acme_deleted_20260421\",
                \"version\": null | 2, \"pending\": null | [3],
                \"error\": null | \"why the tenant's version could not be read\"}],
   \"summary\": {\"active\": 1, \"retired\": 0, \"up_to_date\": 0, \"behind\": 1, \"failed\": 0}}
\"migrations\" is null when no directory was given and ./migrations does not exist; then
\"version\" and \"pending\" are null too. \"version\" is the highest applied migration (null:
none applied); \"pending\" lists the versions not yet applied. Tenants are sorted by key.";

fn parse_table(s: &str) -> Result<(String, String), String> {
    match s.split_once('.') {
        Some((schema, table)) if !schema.is_empty() && !table.is_empty() => {
            Ok((schema.to_owned(), table.to_owned()))
        }
        _ => Err(format!("expected SCHEMA.TABLE, got {s:?}")),
    }
}

fn parse_slot(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, schema)) if !name.is_empty() && !schema.is_empty() => {
            Ok((name.to_owned(), schema.to_owned()))
        }
        _ => Err(format!("expected NAME=SCHEMA, got {s:?}")),
    }
}

/// A grace period, with the text the operator wrote (echoed back in messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grace {
    /// How long a tenant must have been retired.
    pub duration: Duration,
    /// What was written on the command line, e.g. `30d` (`0` reads `0s`).
    pub text: String,
}

/// `0`, or a duration `humantime` reads (`30d`, `12h`, `1h 30m`); never negative.
pub fn parse_grace(s: &str) -> Result<Grace, String> {
    let text = s.trim();
    let hint = "use a duration such as 30d, 12h or 90m, or 0 to purge every retired tenant";
    if text.starts_with('-') {
        return Err(format!("a grace period cannot be negative; {hint}"));
    }
    if text == "0" {
        return Ok(Grace {
            duration: Duration::ZERO,
            text: "0s".to_owned(),
        });
    }
    let duration = humantime::parse_duration(text).map_err(|e| format!("{e}; {hint}"))?;
    Ok(Grace {
        duration,
        text: text.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grace(s: &str) -> Result<Duration, String> {
        parse_grace(s).map(|g| g.duration)
    }

    #[test]
    fn grace_periods() {
        assert_eq!(grace("0"), Ok(Duration::ZERO));
        assert_eq!(grace("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(grace("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(grace("1h 30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_grace("12h").unwrap().text, "12h");
        assert_eq!(parse_grace("0").unwrap().text, "0s");
        for bad in ["30", "d", "3x", "", "-1d", "-0"] {
            assert!(grace(bad).is_err(), "{bad}");
        }
        assert!(grace("-1d").unwrap_err().contains("cannot be negative"));
    }

    #[test]
    fn the_environment_fills_what_the_command_line_left_out() {
        let env = |name: &str| match name {
            "DATABASE_URL" => Some("postgres://from-env".to_owned()),
            "TENANT_REGISTRY" => Some("registry_from_env".to_owned()),
            "TENANT_MIGRATIONS" => Some("dir_from_env".to_owned()),
            _ => None,
        };
        let mut cli = Cli::parse_from(["tenant", "status"]);
        cli.apply_env(env);
        assert_eq!(cli.database_url.as_deref(), Some("postgres://from-env"));
        assert_eq!(cli.registry(), "registry_from_env");
        let Command::Status(status) = &cli.command else {
            panic!("{cli:?}")
        };
        assert_eq!(status.migrations.dir(), Path::new("dir_from_env"));
        assert!(status.migrations.is_explicit());

        // The command line wins; empty variables count as unset.
        let mut cli = Cli::parse_from([
            "tenant",
            "--registry",
            "flag",
            "migrate",
            "--all",
            "--migrations",
            "m",
            "--database-url",
            "u",
        ]);
        cli.apply_env(env);
        assert_eq!(cli.database_url.as_deref(), Some("u"));
        assert_eq!(cli.registry(), "flag");
        let Command::Migrate(migrate) = &cli.command else {
            panic!("{cli:?}")
        };
        assert_eq!(migrate.migrations.dir(), Path::new("m"));
        let mut cli = Cli::parse_from(["tenant", "status"]);
        cli.apply_env(|_| Some(String::new()));
        assert_eq!(
            (cli.database_url.as_deref(), cli.registry()),
            (None, "tenant_registry")
        );
        let Command::Status(status) = &cli.command else {
            panic!("{cli:?}")
        };
        assert!(!status.migrations.is_explicit());
        assert_eq!(status.migrations.dir(), Path::new("migrations"));
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
        Cli::command_for(true).debug_assert();
    }

    #[test]
    fn with_models_check_s_help_names_the_models_and_generate_parses() {
        let about = |with_models| {
            Cli::command_for(with_models)
                .find_subcommand("check")
                .and_then(|c| c.get_about())
                .map(|a| a.to_string())
                .unwrap_or_default()
        };
        assert!(
            about(true).contains("against this binary's models"),
            "{}",
            about(true)
        );
        assert!(about(false).contains("against what the migrations build"));
        let cli = Cli::parse_from([
            "tenant",
            "migrate",
            "generate",
            "add_x",
            "--migrations",
            "m",
        ]);
        let Command::Migrate(MigrateArgs {
            command: Some(MigrateCommand::Generate(generate)),
            ..
        }) = &cli.command
        else {
            panic!("{cli:?}")
        };
        assert_eq!(generate.name, "add_x");
        assert_eq!(generate.migrations.dir(), Path::new("m"));
        assert!(parse_migration_name("Add-X").is_err());
        assert!(parse_migration_name("").is_err());
    }
}
