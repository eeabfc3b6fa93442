//! What each command does.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tenant_runtime::{
    Allowlist, Client, MigrationReport, Migrations, Migrator, ModelSet, Outcome, Provisioner,
    Registry, SchemaMap, Tenant, TenantState,
};

use crate::cli::{Cli, Command, MigrateArgs, MigrationsArgs, StatusArgs, TenantsCommand};
use crate::Failure;

pub async fn run(cli: Cli) -> Result<(), Failure> {
    let Some(url) = cli.database_url.as_deref() else {
        return Err(Failure::Usage(
            "no database URL: pass --database-url or set DATABASE_URL".into(),
        ));
    };
    let registry = Registry::new(&cli.registry)
        .map_err(|e| Failure::Usage(format!("invalid --registry {:?}: {e}", cli.registry)))?;
    match cli.command {
        Command::Tenants(command) => tenants(url, registry, command).await,
        Command::Migrate(args) => migrate(url, &registry, args).await,
        Command::Status(args) => status(url, &registry, args).await,
    }
}

async fn connect(url: &str) -> Result<Client, Failure> {
    Client::connect(url)
        .await
        .map_err(|e| Failure::Unreachable(format!("cannot connect to the database: {e}")))
}

async fn tenants(url: &str, registry: Registry, command: TenantsCommand) -> Result<(), Failure> {
    let mut client = connect(url).await?;
    let provisioner = Provisioner::new(ModelSet::new())?.with_registry(registry);
    match command {
        TenantsCommand::Init => {
            provisioner.install(&client).await?;
            println!("registry {} is installed", provisioner.registry().table());
            Ok(())
        }
        TenantsCommand::List => list(&client, provisioner.registry()).await,
        TenantsCommand::Create {
            key,
            schema,
            grant_to,
            migrate,
            migrations,
        } => {
            // Check everything the command needs before changing anything.
            let loaded = if migrate {
                Some(load_migrations(&migrations)?)
            } else {
                None
            };
            let provisioner = match grant_to {
                Some(role) => provisioner.grant_to(&role)?,
                None => provisioner,
            };
            provisioner.install(&client).await?;
            let allowlist = Allowlist::new();
            let tenant = provisioner
                .provision(&mut client, &allowlist, &key, &schema)
                .await?;
            println!("provisioned tenant {key} in schema {schema}");
            if let Some((migrations, map)) = loaded {
                let report = Migrator::new(&migrations)
                    .with_schema_map(map)
                    .migrate_tenant(&mut client, &tenant)
                    .await;
                println!("{key} ({schema}): {}", report.outcome);
                if report.outcome.is_failed() {
                    return Err(Failure::TenantsFailed);
                }
            }
            Ok(())
        }
        TenantsCommand::Drop { key } => {
            let retired = provisioner
                .retire(&mut client, &Allowlist::new(), &key)
                .await?;
            println!(
                "retired tenant {key}: schema {} renamed to {}; undo with `tenant tenants restore {key}`, delete for good with `tenant tenants purge --older-than <grace>`",
                retired.schema, retired.renamed_to
            );
            Ok(())
        }
        TenantsCommand::Restore { key } => {
            let tenant = provisioner
                .restore(&mut client, &Allowlist::new(), &key)
                .await?;
            println!(
                "restored tenant {key} in schema {}",
                tenant.schema().as_str()
            );
            Ok(())
        }
        TenantsCommand::Purge { older_than } => {
            let report = provisioner.purge(&mut client, older_than).await?;
            for p in &report.purged {
                println!(
                    "purged tenant {}: dropped schema {}",
                    p.key, p.dropped_schema
                );
            }
            for refused in &report.refused {
                eprintln!(
                    "refused to purge tenant {:?}: {}",
                    refused.key, refused.error
                );
            }
            println!(
                "purged {} tenant(s) retired more than {} ago",
                report.purged.len(),
                human(older_than)
            );
            match report.refused.len() {
                0 => Ok(()),
                n => Err(Failure::Refused(format!(
                    "{n} retired tenant(s) were left alone because their registry rows do not name the schema retiring them produced; fix those rows by hand"
                ))),
            }
        }
    }
}

async fn list(client: &Client, registry: &Registry) -> Result<(), Failure> {
    let entries = registry.entries(client).await?;
    if entries.is_empty() {
        println!("no tenants in {}", registry.table());
        return Ok(());
    }
    let mut rows = vec![[
        "KEY".to_owned(),
        "SCHEMA".to_owned(),
        "STATE".to_owned(),
        "CREATED (UTC)".to_owned(),
        "RETIRED AS".to_owned(),
    ]];
    for e in &entries {
        rows.push([
            e.key.clone(),
            e.schema.clone(),
            e.state.as_str().to_owned(),
            utc(e.created_at),
            e.retired_schema.clone().unwrap_or_default(),
        ]);
    }
    print_table(&rows);
    let retired = entries
        .iter()
        .filter(|e| e.state == TenantState::Retired)
        .count();
    println!(
        "{} tenant(s): {} active, {retired} retired",
        entries.len(),
        entries.len() - retired
    );
    Ok(())
}

/// Loads and checks the migration files, and the schema map of the declared slots.
fn load_migrations(args: &MigrationsArgs) -> Result<(Migrations, SchemaMap), Failure> {
    let mut map = SchemaMap::new();
    let mut slots: Vec<&'static str> = Vec::new();
    for (name, schema) in &args.slots {
        map = map
            .with(name, schema)
            .map_err(|e| Failure::Usage(format!("invalid --slot {name}={schema}: {e}")))?;
        // Slot names are `&'static` in templates; a handful of strings, once per process.
        slots.push(Box::leak(name.clone().into_boxed_str()));
    }
    let migrations = Migrations::from_dir(&args.migrations, &slots)
        .map_err(|e| Failure::Usage(format!("in {}: {e}", args.migrations.display())))?;
    Ok((migrations, map))
}

/// The active tenants to work on: all of the registry's, or the ones named.
async fn select_tenants(
    client: &Client,
    registry: &Registry,
    all: bool,
    keys: &[String],
) -> Result<Vec<Tenant>, Failure> {
    let allowlist = Allowlist::load_from_registry(client, registry).await?;
    if all {
        return Ok(allowlist.tenants());
    }
    keys.iter()
        .map(|k| allowlist.resolve(k).map_err(Failure::from))
        .collect()
}

fn progress_bar(total: usize, verb: &str) -> ProgressBar {
    // Drawn on stderr, and only when it is a terminal.
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    let template = format!(
        "{verb} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} tenants, {{msg}} ETA {{eta}}"
    );
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar.set_message("0 failed");
    bar
}

async fn run_migrator(
    migrator: Migrator<'_>,
    url: &str,
    jobs: u16,
    tenants: &[Tenant],
    verb: &str,
) -> Result<MigrationReport, Failure> {
    let bar = progress_bar(tenants.len(), verb);
    let hook_bar = bar.clone();
    let migrator = migrator.on_progress(move |p| {
        hook_bar.set_position(p.done as u64);
        hook_bar.set_message(format!("{} failed", p.failed));
    });
    let jobs = usize::from(jobs).min(tenants.len()).max(1);
    let mut clients = Vec::with_capacity(jobs);
    for _ in 0..jobs {
        clients.push(connect(url).await?);
    }
    let report = migrator.run(&mut clients, tenants).await;
    bar.finish_and_clear();
    Ok(report)
}

async fn migrate(url: &str, registry: &Registry, args: MigrateArgs) -> Result<(), Failure> {
    let (migrations, map) = load_migrations(&args.migrations)?;
    let client = connect(url).await?;
    let tenants = select_tenants(&client, registry, args.all, &args.tenant).await?;
    drop(client);
    let migrator = Migrator::new(&migrations)
        .with_schema_map(map)
        .dry_run(args.dry_run)
        .fail_fast(args.fail_fast);
    let verb = if args.dry_run {
        "checking"
    } else {
        "migrating"
    };
    let report = run_migrator(migrator, url, args.jobs, &tenants, verb).await?;
    // Up-to-date tenants are the quiet majority: only the others get a line.
    for t in &report.tenants {
        if !matches!(t.outcome, Outcome::UpToDate) {
            println!(
                "{} ({}): {}",
                t.tenant.key(),
                t.tenant.schema().as_str(),
                t.outcome
            );
        }
    }
    let c = report.counts();
    println!(
        "{} tenant(s) in {:.1?}: {} migrated, {} up to date, {} pending, {} failed, {} not run",
        report.tenants.len(),
        report.elapsed,
        c.applied,
        c.up_to_date,
        c.pending,
        c.failed,
        c.not_run
    );
    if report.is_success() {
        Ok(())
    } else {
        Err(Failure::TenantsFailed)
    }
}

async fn status(url: &str, registry: &Registry, args: StatusArgs) -> Result<(), Failure> {
    let migrations = if Path::new(&args.migrations.migrations).is_dir() {
        Some(load_migrations(&args.migrations)?)
    } else {
        None
    };
    let client = connect(url).await?;
    let entries = registry.entries(&client).await?;
    let active = Allowlist::load_from_registry(&client, registry)
        .await?
        .tenants();
    drop(client);

    let report = match &migrations {
        Some((migrations, map)) => {
            let migrator = Migrator::new(migrations)
                .with_schema_map(map.clone())
                .dry_run(true);
            Some(run_migrator(migrator, url, args.jobs, &active, "reading").await?)
        }
        None => None,
    };
    let mut rows = vec![[
        "KEY".to_owned(),
        "SCHEMA".to_owned(),
        "STATE".to_owned(),
        "VERSION".to_owned(),
        "PENDING".to_owned(),
    ]];
    let mut failures = Vec::new();
    for e in &entries {
        let line = report
            .as_ref()
            .and_then(|r| r.tenants.iter().find(|t| t.tenant.key() == e.key));
        let (version, pending) = match line {
            Some(t) => {
                let version = t.version_before.map_or("-".to_owned(), |v| v.to_string());
                let pending = match &t.outcome {
                    Outcome::UpToDate => "0".to_owned(),
                    Outcome::Pending(v) => v.len().to_string(),
                    other => {
                        failures.push(format!("{}: {other}", e.key));
                        "error".to_owned()
                    }
                };
                (version, pending)
            }
            None => ("".to_owned(), "".to_owned()),
        };
        let state = match &e.retired_schema {
            Some(renamed) => format!("retired as {renamed}"),
            None => e.state.as_str().to_owned(),
        };
        rows.push([e.key.clone(), e.schema.clone(), state, version, pending]);
    }
    if entries.is_empty() {
        println!("no tenants in {}", registry.table());
    } else {
        print_table(&rows);
    }
    match (&migrations, &report) {
        (Some((migrations, _)), Some(report)) => {
            let c = report.counts();
            println!(
                "{} active tenant(s); latest migration {}: {} up to date, {} behind, {} failed",
                active.len(),
                migrations
                    .latest_version()
                    .map_or("none".to_owned(), |v| v.to_string()),
                c.up_to_date,
                c.pending,
                c.failed
            );
        }
        _ => println!(
            "{} active tenant(s); no migrations directory at {}: versions not shown",
            active.len(),
            args.migrations.migrations.display()
        ),
    }
    for f in &failures {
        eprintln!("error: {f}");
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Failure::TenantsFailed)
    }
}

fn print_table<const N: usize>(rows: &[[String; N]]) {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", line.trim_end());
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC.
fn utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    )
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01 00:00:00");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096); // 2024-02-29 12:34:56
        assert_eq!(utc(t), "2024-02-29 12:34:56");
    }
}
