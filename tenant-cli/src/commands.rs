//! What each command does.

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, SystemTime};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use tenant_runtime::lifecycle::{
    Connections, MigrationReport, Outcome, RegistryEntry, TenantState,
};
use tenant_runtime::{
    Allowlist, Client, Migrations, Migrator, ModelSet, Provisioner, Registry, SchemaMap, Tenant,
};

use crate::cli::{
    Cli, Command, Format, Grace, MigrateArgs, MigrateCommand, MigrationsArgs, StampArgs,
    StatusArgs, TenantsCommand, VersionsArgs,
};
use crate::show::{escaped, print_json, print_table, rfc3339, utc};
use crate::wording::{operator_message, outcome};
use crate::Failure;

/// Runs the command; `models`: the application's, when the binary was built with them.
pub async fn run(cli: Cli, models: Option<&ModelSet>) -> Result<(), Failure> {
    if let Command::Migrate(MigrateArgs {
        command: Some(MigrateCommand::Generate(args)),
        ..
    }) = &cli.command
    {
        // No registry involved; and without models there is nothing to connect for.
        return crate::generate::generate(cli.database_url.as_deref(), args, models).await;
    }
    let url = database_url(cli.database_url.as_deref())?;
    let registry = Registry::new(cli.registry()).map_err(|e| {
        Failure::Usage(format!(
            "invalid --registry {:?}: {}",
            cli.registry(),
            operator_message(&e)
        ))
    })?;
    match cli.command {
        Command::Tenants(command) => tenants(url, registry, command, models).await,
        Command::Migrate(args) => migrate(url, &registry, args, models).await,
        Command::Status(args) => status(url, &registry, args).await,
        Command::Check(args) => crate::check::check(url, &registry, args, models).await,
    }
}

/// The database URL (`--database-url`, `DATABASE_URL`), required.
pub fn database_url(url: Option<&str>) -> Result<&str, Failure> {
    url.ok_or_else(|| {
        Failure::Usage("no database URL: pass --database-url or set DATABASE_URL".into())
    })
}

pub async fn connect(url: &str) -> Result<Client, Failure> {
    Client::connect(url)
        .await
        .map_err(|e| Failure::Unreachable(format!("cannot connect to the database: {e}")))
}

async fn tenants(
    url: &str,
    registry: Registry,
    command: TenantsCommand,
    models: Option<&ModelSet>,
) -> Result<(), Failure> {
    let mut client = connect(url).await?;
    let provisioner = Provisioner::new(ModelSet::new())?.with_registry(registry);
    match command {
        TenantsCommand::Init => {
            provisioner.install(&client).await?;
            println!("registry {} is installed", provisioner.registry().table());
            Ok(())
        }
        TenantsCommand::List { format } => list(&client, provisioner.registry(), format).await,
        TenantsCommand::Create {
            key,
            schema,
            grant_to,
            migrate,
            migrations,
        } => {
            // Check everything the command needs before changing anything. The tenant is
            // built as the migrations say when there are migrations: a directory named
            // (--migrations, TENANT_MIGRATIONS), or ./migrations if it exists (--migrate
            // requires one).
            let loaded = if migrate || migrations.is_explicit() || migrations.dir().is_dir() {
                Some(load_migrations(&migrations)?)
            } else {
                None
            };
            // Without migrations, a binary built with the application's models builds the
            // tenant's tables from them (the stock binary makes an empty schema).
            let from_models = match (&loaded, models) {
                (None, Some(models)) => Some(models),
                _ => None,
            };
            let provisioner = match from_models {
                Some(models) => {
                    Provisioner::new(models.clone())?.with_registry(provisioner.registry().clone())
                }
                None => provisioner,
            };
            let provisioner = match grant_to {
                Some(role) => provisioner.grant_to(&role)?,
                None => provisioner,
            };
            let provisioner = match &loaded {
                Some((migrations, map)) => provisioner
                    .with_migrations(migrations)
                    .with_schema_map(map.clone()),
                None => provisioner,
            };
            provisioner.install(&client).await?;
            let existed = provisioner.registry().entry(&client, &key).await?.is_some();
            let allowlist = Allowlist::new();
            let tenant = provisioner
                .provision(&mut client, &allowlist, &key, &schema)
                .await?;
            println!(
                "provisioned tenant {} in schema {}",
                escaped(&key),
                escaped(&schema)
            );
            if from_models.is_some() && !existed {
                println!(
                    "{}: tables built from the models (no migrations directory)",
                    tenant_label(&tenant)
                );
            }
            match loaded {
                Some((migrations, _)) if !existed && !migrations.is_empty() => {
                    let versions: Vec<String> =
                        migrations.iter().map(|m| m.version().to_string()).collect();
                    println!(
                        "{}: applied {} (in the provisioning transaction)",
                        tenant_label(&tenant),
                        versions.join(", ")
                    );
                }
                // A tenant provisioned before: --migrate brings it up to date.
                Some((migrations, map)) if migrate => {
                    let report = Migrator::new(&migrations)
                        .with_schema_map(map)
                        .run(&mut client, std::slice::from_ref(&tenant))
                        .await?;
                    let result = &report.tenants[0].outcome;
                    println!("{}: {}", tenant_label(&tenant), outcome(result));
                    if result.is_failed() {
                        return Err(Failure::TenantsFailed);
                    }
                }
                _ => {}
            }
            Ok(())
        }
        TenantsCommand::Drop { key } => {
            let retired = provisioner
                .retire(&mut client, &Allowlist::new(), &key)
                .await?;
            let key = escaped(&key);
            println!(
                "retired tenant {key}: schema {} renamed to {}; undo with `tenant tenants restore {key}`, delete for good with `tenant tenants purge --older-than <grace>`",
                escaped(&retired.schema),
                escaped(&retired.renamed_to)
            );
            Ok(())
        }
        TenantsCommand::Restore { key } => {
            let tenant = provisioner
                .restore(&mut client, &Allowlist::new(), &key)
                .await?;
            println!(
                "restored tenant {} in schema {}",
                escaped(&key),
                escaped(tenant.schema().as_str())
            );
            Ok(())
        }
        TenantsCommand::Export { key, out } => {
            crate::archive::export(&mut client, &provisioner, &key, &out).await
        }
        TenantsCommand::Import {
            key,
            schema,
            file,
            grant_to,
            migrations,
        } => {
            let provisioner = match grant_to {
                Some(role) => provisioner.grant_to(&role)?,
                None => provisioner,
            };
            crate::archive::import(&mut client, &provisioner, &key, &schema, &file, &migrations)
                .await
        }
        TenantsCommand::Clone {
            source,
            key,
            schema,
            grant_to,
            migrations,
        } => {
            let provisioner = match grant_to {
                Some(role) => provisioner.grant_to(&role)?,
                None => provisioner,
            };
            crate::archive::clone(
                &mut client,
                &provisioner,
                &source,
                &key,
                &schema,
                &migrations,
            )
            .await
        }
        TenantsCommand::Move {
            key,
            to,
            routes_table,
            lock_timeout,
            migrations,
        } => {
            crate::archive::move_tenant(
                &mut client,
                &provisioner,
                &key,
                &to,
                &routes_table,
                lock_timeout,
                &migrations,
            )
            .await
        }
        TenantsCommand::Purge {
            older_than,
            dry_run,
            yes,
            snapshot_dir,
            no_snapshot: _,
        } => {
            let ask = !dry_run && !yes && std::io::stdin().is_terminal();
            let provisioner = match snapshot_dir {
                Some(dir) => provisioner.snapshot_before_purge(dir),
                None => provisioner,
            };
            purge(&mut client, &provisioner, &older_than, dry_run, ask).await
        }
    }
}

/// Why a registry row cannot be loaded (by the library's key and schema rules), if it can't.
fn row_problem(entry: &RegistryEntry) -> Option<String> {
    Allowlist::new()
        .insert(&entry.key, &entry.schema)
        .err()
        .map(|e| operator_message(&e))
}

/// `key (schema)`, escaped.
fn tenant_label(tenant: &Tenant) -> String {
    format!(
        "{} ({})",
        escaped(tenant.key()),
        escaped(tenant.schema().as_str())
    )
}

/// One tenant of `tenants list --format json` (shape documented in `--help`).
#[derive(Serialize)]
struct ListedTenant<'a> {
    key: &'a str,
    schema: &'a str,
    state: &'static str,
    created_at: String,
    retired_schema: Option<&'a str>,
    retired_at: Option<String>,
    error: Option<String>,
}

#[derive(Serialize)]
struct ListJson<'a> {
    registry: &'a str,
    tenants: Vec<ListedTenant<'a>>,
}

async fn list(client: &Client, registry: &Registry, format: Format) -> Result<(), Failure> {
    let entries = registry.entries(client).await?;
    let problems: Vec<Option<String>> = entries.iter().map(row_problem).collect();
    if format == Format::Json {
        let tenants = entries
            .iter()
            .zip(&problems)
            .map(|(e, problem)| ListedTenant {
                key: &e.key,
                schema: &e.schema,
                state: e.state.as_str(),
                created_at: rfc3339(e.created_at),
                retired_schema: e.retired_schema.as_deref(),
                retired_at: e.retired_at.map(rfc3339),
                error: problem.clone(),
            })
            .collect();
        return write_json(&ListJson {
            registry: registry.schema().as_str(),
            tenants,
        });
    }
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
            escaped(&e.key).into_owned(),
            escaped(&e.schema).into_owned(),
            e.state.as_str().to_owned(),
            utc(e.created_at),
            escaped(e.retired_schema.as_deref().unwrap_or_default()).into_owned(),
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
    for (e, problem) in entries.iter().zip(&problems) {
        if let Some(problem) = problem {
            eprintln!(
                "warning: the registry row of tenant {} cannot be loaded: {problem}",
                escaped(&e.key)
            );
        }
    }
    Ok(())
}

fn write_json<T: Serialize>(value: &T) -> Result<(), Failure> {
    print_json(value).map_err(|e| Failure::Refused(format!("cannot write the output: {e}")))
}

/// The retired tenants due for purge with `grace` at the database's clock, and that clock.
async fn due_for_purge(
    client: &Client,
    registry: &Registry,
    grace: Duration,
) -> Result<(Vec<RegistryEntry>, SystemTime), Failure> {
    let now = database_now(client).await?;
    let due = registry
        .entries(client)
        .await?
        .into_iter()
        .filter(|e| {
            e.state == TenantState::Retired
                && e.retired_at
                    .is_some_and(|at| now.duration_since(at).is_ok_and(|age| age >= grace))
        })
        .collect();
    Ok((due, now))
}

/// The database server's clock (purge measures the grace period by it).
async fn database_now(client: &Client) -> Result<SystemTime, Failure> {
    let row = client
        .as_tokio_postgres()
        .query_one("SELECT now()", &[])
        .await
        .map_err(tenant_runtime::Error::from)?;
    Ok(row
        .try_get::<_, SystemTime>(0)
        .map_err(tenant_runtime::Error::from)?)
}

async fn purge(
    client: &mut Client,
    provisioner: &Provisioner,
    grace: &Grace,
    dry_run: bool,
    ask: bool,
) -> Result<(), Failure> {
    let mut duration = grace.duration;
    let mut listed = None;
    if dry_run || ask {
        let (due, listed_at) = due_for_purge(client, provisioner.registry(), duration).await?;
        for e in &due {
            let retired = e.retired_schema.as_deref().unwrap_or_default();
            println!(
                "would purge tenant {}: drop schema {} (retired {} UTC){}",
                escaped(&e.key),
                escaped(retired),
                e.retired_at.map(utc).unwrap_or_default(),
                snapshot_note(provisioner, retired, "after a snapshot to")
            );
        }
        if dry_run {
            println!(
                "{} tenant(s) retired more than {} ago would be purged; dry run, nothing was changed",
                due.len(),
                grace.text
            );
            return Ok(());
        }
        if due.is_empty() {
            // Nothing was shown, so nothing may be dropped.
            println!("purged 0 tenant(s) retired more than {} ago", grace.text);
            return Ok(());
        }
        if !confirm(due.len())? {
            return Err(Failure::Refused(
                "not confirmed: nothing was purged".to_owned(),
            ));
        }
        // A tenant that became due while the question waited was not shown: widen the
        // grace period by the wait, so only the tenants shown can be dropped.
        let waited = database_now(client)
            .await?
            .duration_since(listed_at)
            .unwrap_or_default();
        duration += waited + Duration::from_millis(100);
        listed = Some(due);
    }
    let report = provisioner.purge(client, duration).await?;
    for p in &report.purged {
        println!(
            "purged tenant {}: dropped schema {}{}",
            escaped(&p.key),
            escaped(&p.dropped_schema),
            snapshot_note(provisioner, &p.dropped_schema, "snapshot in")
        );
    }
    for refused in &report.refused {
        eprintln!(
            "refused to purge tenant {}: {}",
            escaped(&refused.key),
            operator_message(&refused.error)
        );
    }
    println!(
        "purged {} tenant(s) retired more than {} ago",
        report.purged.len(),
        grace.text
    );
    if let Some(listed) = listed {
        let left: Vec<String> = listed
            .iter()
            .filter(|e| !report.purged.iter().any(|p| p.key == e.key))
            .filter(|e| !report.refused.iter().any(|r| r.key == e.key))
            .map(|e| escaped(&e.key).into_owned())
            .collect();
        if !left.is_empty() {
            println!(
                "not purged, though listed: {} (restored or purged meanwhile, or retired within a moment of the grace period; run purge again to see)",
                left.join(", ")
            );
        }
    }
    match report.refused.len() {
        0 => {}
        n => {
            return Err(Failure::Refused(format!(
                "{n} retired tenant(s) were left alone, each for the reason printed above (a registry row that does not name the schema retiring it produced: fix it by hand; a snapshot that could not be written: fix --snapshot-dir)"
            )))
        }
    }
    Ok(())
}

/// `, <words> <snapshot file>` when purge takes snapshots, else nothing.
fn snapshot_note(provisioner: &Provisioner, retired_schema: &str, words: &str) -> String {
    match provisioner.purge_snapshot_dir() {
        Some(dir) => format!(
            ", {words} {}",
            escaped(
                &tenant_runtime::lifecycle::archive::snapshot_path(dir, retired_schema)
                    .display()
                    .to_string()
            )
        ),
        None => String::new(),
    }
}

/// Asks on the terminal whether to drop `count` tenants' schemas; only "y" or "yes" agrees.
fn confirm(count: usize) -> Result<bool, Failure> {
    let mut stderr = std::io::stderr();
    let asked = write!(
        stderr,
        "Drop the schemas of these {count} tenant(s) and all their data, for good? [y/N] "
    )
    .and_then(|()| stderr.flush());
    if let Err(e) = asked {
        return Err(Failure::Refused(format!(
            "cannot ask for confirmation: {e}"
        )));
    }
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Failure::Refused(format!("cannot read the answer: {e}")))?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Loads and checks the migration files, and the schema map of the declared slots.
pub fn load_migrations(args: &MigrationsArgs) -> Result<(Migrations, SchemaMap), Failure> {
    let dir = args.dir();
    if !dir.is_dir() {
        return Err(Failure::Usage(format!(
            "no migrations directory at {}: name the directory of migration files with --migrations DIR (or TENANT_MIGRATIONS)",
            dir.display()
        )));
    }
    let (map, slots) = slot_map(args)?;
    let migrations = Migrations::from_dir(dir, &slots)
        .map_err(|e| Failure::Usage(format!("in {}: {}", dir.display(), operator_message(&e))))?;
    Ok((migrations, map))
}

/// The schema map of the `--slot NAME=SCHEMA` options, and the slot names they declare.
pub fn slot_map(args: &MigrationsArgs) -> Result<(SchemaMap, Vec<&'static str>), Failure> {
    let mut map = SchemaMap::new();
    let mut slots: Vec<&'static str> = Vec::new();
    for (name, schema) in &args.slots {
        map = map
            .with(name, schema)
            .map_err(|e| Failure::Usage(format!("invalid --slot {name}={schema}: {e}")))?;
        // Slot names are `&'static` in templates; a handful of strings, once per process.
        slots.push(Box::leak(name.clone().into_boxed_str()));
    }
    Ok((map, slots))
}

/// The active tenants to work on: all of the registry's, or the ones named; and how many
/// active registry rows were skipped because the library refuses them (each one warned of).
pub(crate) async fn select_tenants(
    client: &Client,
    registry: &Registry,
    all: bool,
    keys: &[String],
) -> Result<(Vec<Tenant>, usize), Failure> {
    let allowlist = Allowlist::new();
    let refresh = allowlist.refresh_from_registry(client, registry).await?;
    // A row the library refuses (a hand-edited schema such as `public`) is skipped, not
    // fatal: every other tenant is still worked on, and the run ends with exit 1.
    for row in &refresh.refused {
        eprintln!(
            "warning: the registry row of tenant {} cannot be loaded: {}; skipped",
            escaped(&row.key),
            operator_message(&row.reason)
        );
    }
    let skipped = refresh.refused.len();
    if all {
        return Ok((allowlist.tenants(), skipped));
    }
    let tenants = keys
        .iter()
        .map(|k| allowlist.resolve(k).map_err(Failure::from))
        .collect::<Result<_, _>>()?;
    Ok((tenants, skipped))
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

/// Runs `migrator` over `jobs` connections; with `print_lines`, prints each tenant's outcome
/// (but up to date) as it finishes.
async fn run_migrator(
    migrator: Migrator<'_>,
    url: &str,
    jobs: u16,
    tenants: &[Tenant],
    verb: &str,
    print_lines: bool,
) -> Result<MigrationReport, Failure> {
    let bar = progress_bar(tenants.len(), verb);
    let hook_bar = bar.clone();
    let migrator = migrator.on_progress(move |p| {
        // Each tenant's line as it finishes (above the bar on a terminal), so a log shows
        // progress and a stuck tenant shows as the one missing. Up-to-date tenants are the
        // quiet majority: only the others get a line.
        if print_lines && !matches!(p.outcome, Outcome::UpToDate) {
            let line = format!("{}: {}", tenant_label(p.tenant), outcome(p.outcome));
            hook_bar.suspend(|| println!("{line}"));
        }
        hook_bar.set_position(p.done as u64);
        hook_bar.set_message(format!("{} failed", p.failed));
    });
    let jobs = usize::from(jobs).min(tenants.len()).max(1);
    let report = migrator
        .run(Connections::url(url, jobs), tenants)
        .await
        .map_err(run_failure)?;
    bar.finish_and_clear();
    Ok(report)
}

async fn migrate(
    url: &str,
    registry: &Registry,
    args: MigrateArgs,
    models: Option<&ModelSet>,
) -> Result<(), Failure> {
    match args.command {
        Some(MigrateCommand::History(a)) => return versions(url, registry, a, true).await,
        Some(MigrateCommand::Current(a)) => return versions(url, registry, a, false).await,
        Some(MigrateCommand::Stamp(a)) => return stamp(url, registry, a).await,
        // `run` dispatches it first (it needs no registry, and models before a URL).
        Some(MigrateCommand::Generate(a)) => {
            return crate::generate::generate(Some(url), &a, models).await
        }
        None => {}
    }
    let (migrations, map) = load_migrations(&args.migrations)?;
    let mut client = connect(url).await?;
    let mut migrator = Migrator::new(&migrations)
        .with_schema_map(map)
        .dry_run(args.dry_run);
    if let Some(version) = args.to {
        migrator = migrator.to(version);
    }
    if args.shared {
        let outcome = migrator.run_shared(&mut client, registry).await?;
        println!("shared ({}): {}", registry.schema().as_str(), outcome);
        if !args.all && args.tenant.is_empty() {
            return Ok(());
        }
    }
    let (tenants, skipped) = select_tenants(&client, registry, args.all, &args.tenant).await?;
    drop(client);
    let migrator = migrator
        .fail_fast(args.fail_fast)
        .lock_timeout(args.timeouts.lock_timeout)
        .statement_timeout(args.timeouts.statement_timeout);
    let verb = if args.dry_run {
        "checking"
    } else {
        "migrating"
    };
    let report = run_migrator(migrator, url, args.jobs, &tenants, verb, true).await?;
    summarise(&report, skipped)
}

/// The lines of tenants that had none yet, the summary line, and the exit status
/// (`skipped`: registry rows that could not be loaded).
fn summarise(report: &MigrationReport, skipped: usize) -> Result<(), Failure> {
    // Tenants that never started (fail-fast, or no connection left) had no line yet.
    for t in &report.tenants {
        if t.elapsed.is_zero() && !matches!(t.outcome, Outcome::UpToDate) {
            println!("{}: {}", tenant_label(&t.tenant), outcome(&t.outcome));
        }
    }
    let c = report.counts();
    let mut more = String::new();
    if c.rolled_back > 0 {
        more.push_str(&format!(", {} rolled back", c.rolled_back));
    }
    if c.stamped > 0 {
        more.push_str(&format!(", {} stamped", c.stamped));
    }
    println!(
        "{} tenant(s) in {:.1?}: {} migrated, {} up to date, {} pending, {} failed, {} not run{more}",
        report.tenants.len(),
        report.elapsed,
        c.applied,
        c.up_to_date,
        c.pending,
        c.failed,
        c.not_run
    );
    if skipped > 0 {
        println!("{skipped} registry row(s) skipped: they cannot be loaded (see the warnings)");
    }
    if report.is_success() && skipped == 0 {
        Ok(())
    } else {
        Err(Failure::TenantsFailed)
    }
}

// Issue 13, part 3: `migrate history`, `migrate current`, `migrate stamp`.

/// One tenant of `migrate history|current --format json` (shape documented in `--help`).
#[derive(Serialize)]
struct VersionsTenant {
    key: String,
    schema: String,
    current: Option<u64>,
    pending: Vec<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    applied: Option<Vec<AppliedJson>>,
    error: Option<String>,
}

#[derive(Serialize)]
struct AppliedJson {
    version: u64,
    name: String,
    checksum: String,
    applied_at: String,
}

#[derive(Serialize)]
struct VersionsJson<'a> {
    registry: &'a str,
    latest_version: Option<u64>,
    tenants: Vec<VersionsTenant>,
}

async fn versions(
    url: &str,
    registry: &Registry,
    args: VersionsArgs,
    with_history: bool,
) -> Result<(), Failure> {
    let (migrations, map) = load_migrations(&args.migrations)?;
    let client = connect(url).await?;
    let (mut tenants, skipped) = select_tenants(&client, registry, args.all, &args.tenant).await?;
    drop(client);
    tenants.sort_by(|a, b| a.key().cmp(b.key()));
    let jobs = usize::from(args.jobs).min(tenants.len()).max(1);
    let histories = Migrator::new(&migrations)
        .with_schema_map(map)
        .history(Connections::url(url, jobs), &tenants)
        .await
        .map_err(run_failure)?;
    let rows: Vec<VersionsTenant> = histories
        .iter()
        .map(|h| VersionsTenant {
            key: h.tenant.key().to_owned(),
            schema: h.tenant.schema().as_str().to_owned(),
            current: h.current(),
            pending: h.pending.clone(),
            applied: with_history.then(|| {
                h.applied
                    .iter()
                    .map(|a| AppliedJson {
                        version: a.version,
                        name: a.name.clone(),
                        checksum: a.checksum.clone(),
                        applied_at: rfc3339(a.applied_at),
                    })
                    .collect()
            }),
            error: h.error.as_ref().map(operator_message),
        })
        .collect();
    let failed = skipped > 0 || rows.iter().any(|r| r.error.is_some());
    if args.format == Format::Json {
        write_json(&VersionsJson {
            registry: registry.schema().as_str(),
            latest_version: migrations
                .iter()
                .filter(|m| !m.is_shared())
                .map(|m| m.version())
                .max(),
            tenants: rows,
        })?;
    } else if with_history {
        for r in &rows {
            println!(
                "{} ({}): at {}",
                escaped(&r.key),
                escaped(&r.schema),
                r.current.map_or("none".to_owned(), |v| v.to_string())
            );
            for a in r.applied.iter().flatten() {
                println!("  {:>6}  {}  applied {}", a.version, a.name, a.applied_at);
            }
            for v in &r.pending {
                let name = migrations.get(*v).map_or("", |m| m.name());
                println!("  {v:>6}  {name}  pending");
            }
            if let Some(e) = &r.error {
                println!("  error: {e}");
            }
        }
    } else {
        let mut table = vec![[
            "KEY".to_owned(),
            "SCHEMA".to_owned(),
            "CURRENT".to_owned(),
            "PENDING".to_owned(),
        ]];
        for r in &rows {
            table.push([
                escaped(&r.key).into_owned(),
                escaped(&r.schema).into_owned(),
                r.current.map_or("-".to_owned(), |v| v.to_string()),
                match &r.error {
                    Some(_) => "error".to_owned(),
                    None => r.pending.len().to_string(),
                },
            ]);
        }
        print_table(&table);
        for r in rows.iter().filter(|r| r.error.is_some()) {
            eprintln!(
                "error: {}: {}",
                escaped(&r.key),
                r.error.as_deref().unwrap_or_default()
            );
        }
    }
    if failed {
        Err(Failure::TenantsFailed)
    } else {
        Ok(())
    }
}

/// A run's `Err`: the connections could not be opened (exit 3), or the run was refused
/// before it started (an unknown target version: exit 2).
fn run_failure(e: tenant_runtime::Error) -> Failure {
    match e {
        tenant_runtime::Error::Db(_) => {
            Failure::Unreachable(format!("cannot connect to the database: {e}"))
        }
        other => Failure::from(other),
    }
}

async fn stamp(url: &str, registry: &Registry, args: StampArgs) -> Result<(), Failure> {
    let (migrations, map) = load_migrations(&args.migrations)?;
    let client = connect(url).await?;
    let (tenants, skipped) = select_tenants(&client, registry, args.all, &args.tenant).await?;
    drop(client);
    let migrator = Migrator::new(&migrations)
        .with_schema_map(map)
        .dry_run(args.dry_run);
    let jobs = usize::from(args.jobs).min(tenants.len()).max(1);
    let report = migrator
        .stamp(Connections::url(url, jobs), &tenants, args.version)
        .await
        .map_err(run_failure)?;
    for t in &report.tenants {
        println!("{}: {}", tenant_label(&t.tenant), outcome(&t.outcome));
    }
    summarise(&report, skipped)
}

/// `status --format json` (shape documented in `--help`).
#[derive(Serialize)]
struct StatusJson<'a> {
    registry: &'a str,
    migrations: Option<MigrationsJson>,
    tenants: Vec<StatusTenant<'a>>,
    summary: StatusSummary,
}

#[derive(Serialize)]
struct MigrationsJson {
    dir: String,
    latest_version: Option<u64>,
}

#[derive(Serialize)]
struct StatusTenant<'a> {
    key: &'a str,
    schema: &'a str,
    state: &'static str,
    retired_schema: Option<&'a str>,
    version: Option<u64>,
    pending: Option<Vec<u64>>,
    error: Option<String>,
}

#[derive(Serialize)]
struct StatusSummary {
    active: usize,
    retired: usize,
    up_to_date: usize,
    behind: usize,
    failed: usize,
}

async fn status(url: &str, registry: &Registry, args: StatusArgs) -> Result<(), Failure> {
    // A directory the operator named must be there; the default one may be absent.
    let migrations = if args.migrations.is_explicit() || args.migrations.dir().is_dir() {
        Some(load_migrations(&args.migrations)?)
    } else {
        None
    };
    let client = connect(url).await?;
    let entries = registry.entries(&client).await?;
    drop(client);
    // Load the active tenants row by row, so one row the key rule refuses is reported
    // against that row instead of hiding every other tenant's status.
    let allowlist = Allowlist::new();
    let mut problems: Vec<Option<String>> = Vec::with_capacity(entries.len());
    for e in &entries {
        let problem = match e.state {
            TenantState::Active => allowlist.insert(&e.key, &e.schema).err(),
            _ => Allowlist::new().insert(&e.key, &e.schema).err(),
        };
        problems.push(problem.map(|e| operator_message(&e)));
    }
    let active = allowlist.tenants();

    let report = match &migrations {
        Some((migrations, map)) => {
            let migrator = Migrator::new(migrations)
                .with_schema_map(map.clone())
                .dry_run(true);
            Some(run_migrator(migrator, url, args.jobs, &active, "reading", false).await?)
        }
        None => None,
    };
    let mut summary = StatusSummary {
        active: 0,
        retired: 0,
        up_to_date: 0,
        behind: 0,
        failed: 0,
    };
    let mut tenants = Vec::with_capacity(entries.len());
    for (e, problem) in entries.iter().zip(problems) {
        match e.state {
            TenantState::Retired => summary.retired += 1,
            _ => summary.active += 1,
        }
        let line = report
            .as_ref()
            .and_then(|r| r.tenants.iter().find(|t| t.tenant.key() == e.key));
        let mut tenant = StatusTenant {
            key: &e.key,
            schema: &e.schema,
            state: e.state.as_str(),
            retired_schema: e.retired_schema.as_deref(),
            version: None,
            pending: None,
            error: problem,
        };
        if let Some(t) = line {
            tenant.version = t.version_before;
            match &t.outcome {
                Outcome::UpToDate => {
                    summary.up_to_date += 1;
                    tenant.pending = Some(Vec::new());
                }
                Outcome::Pending(v) => {
                    summary.behind += 1;
                    tenant.pending = Some(v.clone());
                }
                Outcome::Failed(error) => {
                    summary.failed += 1;
                    tenant.error = Some(operator_message(error));
                }
                other => {
                    summary.failed += 1;
                    tenant.error = Some(other.to_string());
                }
            }
        } else if tenant.error.is_some() {
            summary.failed += 1;
        }
        tenants.push(tenant);
    }
    let failures: Vec<String> = tenants
        .iter()
        .filter_map(|t| {
            t.error
                .as_ref()
                .map(|error| format!("{}: {error}", escaped(t.key)))
        })
        .collect();

    if args.format == Format::Json {
        write_json(&StatusJson {
            registry: registry.schema().as_str(),
            migrations: migrations.as_ref().map(|(m, _)| MigrationsJson {
                dir: args.migrations.dir().display().to_string(),
                latest_version: m.latest_version(),
            }),
            tenants,
            summary,
        })?;
    } else {
        print_status_text(registry, &args, &migrations, &tenants, &summary);
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

fn print_status_text(
    registry: &Registry,
    args: &StatusArgs,
    migrations: &Option<(Migrations, SchemaMap)>,
    tenants: &[StatusTenant<'_>],
    summary: &StatusSummary,
) {
    if tenants.is_empty() {
        println!("no tenants in {}", registry.table());
    } else {
        let mut rows = vec![[
            "KEY".to_owned(),
            "SCHEMA".to_owned(),
            "STATE".to_owned(),
            "VERSION".to_owned(),
            "PENDING".to_owned(),
        ]];
        for t in tenants {
            let state = match t.retired_schema {
                Some(renamed) => format!("retired as {}", escaped(renamed)),
                None => t.state.to_owned(),
            };
            let (version, pending) = match (&t.pending, &t.error) {
                (_, Some(_)) => (
                    t.version.map_or(String::new(), |v| v.to_string()),
                    "error".to_owned(),
                ),
                (Some(pending), None) => (
                    t.version.map_or("-".to_owned(), |v| v.to_string()),
                    pending.len().to_string(),
                ),
                (None, None) => ("".to_owned(), "".to_owned()),
            };
            rows.push([
                escaped(t.key).into_owned(),
                escaped(t.schema).into_owned(),
                state,
                version,
                pending,
            ]);
        }
        print_table(&rows);
    }
    match migrations {
        Some((migrations, _)) => println!(
            "{} active tenant(s); latest migration {}: {} up to date, {} behind, {} failed",
            summary.active,
            migrations
                .latest_version()
                .map_or("none".to_owned(), |v| v.to_string()),
            summary.up_to_date,
            summary.behind,
            summary.failed
        ),
        None => println!(
            "{} active tenant(s); no migrations directory at {}: versions not shown",
            summary.active,
            args.migrations.dir().display()
        ),
    }
}
