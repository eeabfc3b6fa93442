//! The command line: `tenant [OPTIONS] <COMMAND>`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Exit codes, shown in `--help` and documented in docs/lifecycle.md.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  a tenant operation was refused or failed, or some tenants failed to migrate
  2  usage or configuration error: bad arguments, invalid names, invalid migration files,
     no database URL, registry not installed
  3  the database could not be reached";

/// Provision, retire, restore, purge and migrate the tenant schemas of a PostgreSQL database.
#[derive(Debug, Parser)]
#[command(name = "tenant", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Schema of the tenant registry table (`<schema>.tenants`).
    #[arg(
        long,
        env = "TENANT_REGISTRY",
        default_value = "tenant_registry",
        global = true
    )]
    pub registry: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List, create, drop (retire), restore and purge tenants.
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// Apply pending migrations to tenant schemas.
    Migrate(MigrateArgs),
    /// Show every tenant's state and migration version.
    Status(StatusArgs),
}

#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Create the registry schema and table if missing (`create` does it too).
    Init,
    /// List registered tenants (active and retired).
    List,
    /// Provision a tenant: schema, grants, registry row (and migrations with --migrate).
    Create {
        /// Tenant key (what requests carry).
        key: String,
        /// Schema name: [a-z_][a-z0-9_]*, at most 63 bytes, not public or pg_*.
        schema: String,
        /// Role to grant USAGE and CREATE on the schema (and DML on its tables) to.
        #[arg(long)]
        grant_to: Option<String>,
        /// Apply the migrations to the new tenant right away.
        #[arg(long)]
        migrate: bool,
        #[command(flatten)]
        migrations: MigrationsArgs,
    },
    /// Retire a tenant (phase one of teardown): rename its schema to
    /// <schema>_deleted_<yyyymmdd>; it stops resolving. Undo with `restore`.
    Drop {
        /// Tenant key.
        key: String,
    },
    /// Undo `drop`: rename the schema back and make the tenant active again.
    Restore {
        /// Tenant key.
        key: String,
    },
    /// Phase two of teardown: drop the schemas of tenants retired longer ago than the grace
    /// period.
    Purge {
        /// Grace period: a number with unit s, m, h or d (e.g. 30d, 12h); 0 purges every
        /// retired tenant.
        #[arg(long, value_parser = parse_duration)]
        older_than: Duration,
    },
}

/// Where the migrations are and how to fill their named slots.
#[derive(Debug, Args)]
pub struct MigrationsArgs {
    /// Directory of migration files (<version>_<name>.sql), checked like `embed_migrations!`.
    #[arg(long, env = "TENANT_MIGRATIONS", default_value = "migrations")]
    pub migrations: PathBuf,
    /// A named slot the migrations use, and the schema that fills it: --slot shared=public.
    #[arg(long = "slot", value_name = "NAME=SCHEMA", value_parser = parse_slot)]
    pub slots: Vec<(String, String)>,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["all", "tenant"]))]
pub struct MigrateArgs {
    /// Migrate every active tenant of the registry.
    #[arg(long)]
    pub all: bool,
    /// Migrate only this tenant (repeatable).
    #[arg(long, value_name = "KEY")]
    pub tenant: Vec<String>,
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
    pub migrations: MigrationsArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Connections used to read the tenants' versions.
    #[arg(long, short, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    #[command(flatten)]
    pub migrations: MigrationsArgs,
}

fn parse_slot(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, schema)) if !name.is_empty() && !schema.is_empty() => {
            Ok((name.to_owned(), schema.to_owned()))
        }
        _ => Err(format!("expected NAME=SCHEMA, got {s:?}")),
    }
}

/// `0`, or a number followed by `s`, `m`, `h` or `d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("expected a number with a unit (30d, 12h, 15m, 90s), got {s:?}"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "unknown unit in {s:?}; use s, m, h or d (e.g. 30d)"
            ))
        }
    };
    n.checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("3w").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
