//! `tenants export`, `tenants import` and `tenants clone`: a tenant's data as one archive.
//!
//! The CLI has no application models, so it works from what the database and the
//! migrations directory say: `export` takes every table of the tenant's schema, in the
//! foreign-key order of its constraints (`Exporter::whole_schema`); `import` and `clone`
//! create the new tenant's tables by applying the migrations directory in the same
//! transaction as the data (`Importer::with_migrations`), so the archive must have been
//! exported at the directory's latest migration. `move` does the same into another
//! database (`Mover`), and records the new route in the routes table the application reloads.

use std::path::Path;
use std::time::Duration;

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tenant_runtime::error::{ArchiveError, IoAction};
use tenant_runtime::lifecycle::archive::{ArchiveProgress, Exporter, Importer, Mover};
use tenant_runtime::pool::DatabaseRegistry;
use tenant_runtime::{Allowlist, Client, Provisioner};

use crate::commands::load_migrations;
use crate::show::escaped;
use crate::Failure;

use crate::cli::MigrationsArgs;

/// A progress line on stderr (drawn only when stderr is a terminal): bytes and rows.
fn bar(total_bytes: Option<u64>, verb: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(total_bytes, ProgressDrawTarget::stderr());
    let template = match total_bytes {
        Some(_) => {
            format!("{verb} [{{elapsed_precise}}] {{wide_bar}} {{bytes}}/{{total_bytes}} {{msg}}")
        }
        None => format!("{verb} [{{elapsed_precise}}] {{spinner}} {{msg}}"),
    };
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn progress_hook(
    bar: &ProgressBar,
    show_bytes: bool,
) -> impl Fn(&ArchiveProgress<'_>) + Send + Sync + 'static {
    let bar = bar.clone();
    move |p| {
        if show_bytes && bar.length().is_some() {
            bar.set_position(p.bytes);
        }
        let bytes = if show_bytes && bar.length().is_none() {
            format!("{}, ", HumanBytes(p.bytes))
        } else {
            String::new()
        };
        bar.set_message(format!(
            "{bytes}{} rows; table {} ({}/{})",
            p.rows,
            escaped(p.table),
            p.table_index + 1,
            p.tables
        ));
    }
}

/// Archive errors an operator fixes by changing the arguments (a file that cannot be
/// opened or created) are usage errors (2); the others refusals (1).
fn failure(e: tenant_runtime::Error) -> Failure {
    match &e {
        tenant_runtime::Error::Archive(a)
            if matches!(
                **a,
                ArchiveError::Io {
                    action: IoAction::Open | IoAction::Create,
                    ..
                }
            ) =>
        {
            Failure::Usage(crate::wording::operator_message(&e))
        }
        _ => Failure::from(e),
    }
}

pub async fn export(
    client: &mut Client,
    provisioner: &Provisioner,
    key: &str,
    out: &Path,
) -> Result<(), Failure> {
    let allowlist = Allowlist::load_from_registry(client, provisioner.registry()).await?;
    let tenant = allowlist.resolve(key)?;
    let bar = bar(None, "exporting");
    let summary = Exporter::whole_schema()
        .on_progress(progress_hook(&bar, true))
        .export_to_file(client, &tenant, out)
        .await;
    bar.finish_and_clear();
    let summary = summary.map_err(failure)?;
    for t in &summary.tables {
        println!(
            "  {}: {} rows, sha256 {}",
            escaped(&t.name),
            t.rows,
            t.sha256
        );
    }
    println!(
        "exported tenant {} (schema {}, migration version {}): {} table(s), {} rows, {} to {}",
        escaped(key),
        escaped(tenant.schema().as_str()),
        summary
            .manifest
            .migration_version
            .map_or("none".to_owned(), |v| v.to_string()),
        summary.tables.len(),
        summary.rows(),
        HumanBytes(summary.bytes),
        escaped(&out.display().to_string())
    );
    Ok(())
}

pub async fn import(
    client: &mut Client,
    provisioner: &Provisioner,
    key: &str,
    schema: &str,
    file: &Path,
    migrations: &MigrationsArgs,
) -> Result<(), Failure> {
    let (migrations, map) = load_migrations(migrations)?;
    let provisioner = provisioner.clone().with_schema_map(map);
    provisioner.install(&*client).await?;
    let len = std::fs::metadata(file).map(|m| m.len()).ok();
    let bar = bar(len, "importing");
    let imported = Importer::new(&provisioner)
        .with_migrations(&migrations)
        .on_progress(progress_hook(&bar, true))
        .import_file(client, &Allowlist::new(), key, schema, file)
        .await;
    bar.finish_and_clear();
    let imported = imported.map_err(failure)?;
    for t in &imported.tables {
        println!(
            "  {}: {} rows, sha256 {} verified",
            escaped(&t.name),
            t.rows,
            t.sha256
        );
    }
    let rows: u64 = imported.tables.iter().map(|t| t.rows).sum();
    println!(
        "imported tenant {} in schema {} from {} (exported from tenant {}): {} table(s), {rows} rows",
        escaped(key),
        escaped(schema),
        escaped(&file.display().to_string()),
        escaped(&imported.manifest.source.key),
        imported.tables.len(),
    );
    Ok(())
}

pub async fn clone(
    client: &mut Client,
    provisioner: &Provisioner,
    source: &str,
    key: &str,
    schema: &str,
    migrations: &MigrationsArgs,
) -> Result<(), Failure> {
    let (migrations, map) = load_migrations(migrations)?;
    let provisioner = provisioner.clone().with_schema_map(map);
    provisioner.install(&*client).await?;
    let allowlist = Allowlist::load_from_registry(&*client, provisioner.registry()).await?;
    let from = allowlist.resolve(source)?;
    let bar = bar(None, "cloning");
    let cloned = Importer::new(&provisioner)
        .with_migrations(&migrations)
        .on_progress(progress_hook(&bar, false))
        .clone_tenant(client, &allowlist, &from, key, schema)
        .await;
    bar.finish_and_clear();
    let cloned = cloned.map_err(failure)?;
    for (table, rows) in &cloned.tables {
        println!("  {}: {rows} rows", escaped(table));
    }
    let rows: u64 = cloned.tables.iter().map(|(_, n)| n).sum();
    println!(
        "cloned tenant {} into tenant {} in schema {}: {} table(s), {rows} rows",
        escaped(source),
        escaped(key),
        escaped(schema),
        cloned.tables.len(),
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub async fn move_tenant(
    client: &mut Client,
    provisioner: &Provisioner,
    key: &str,
    to: &str,
    (routes_schema, routes_table): &(String, String),
    lock_timeout: Duration,
    migrations: &MigrationsArgs,
) -> Result<(), Failure> {
    let (migrations, map) = load_migrations(migrations)?;
    let source = provisioner.clone().with_schema_map(map.clone());
    let target = provisioner.clone().with_schema_map(map);
    let there = crate::commands::connect(to).await?;
    target.install(&there).await?;
    drop(there);
    let allowlist = Allowlist::load_from_registry(&*client, source.registry()).await?;
    let tenant = allowlist.resolve(key)?;
    let mover = Mover::new(&source, &target)
        .with_migrations(&migrations)
        .with_routes_table(routes_schema, routes_table)
        .map_err(|e| {
            Failure::Usage(format!(
                "invalid --routes-table: {}",
                crate::wording::operator_message(&e)
            ))
        })?
        .lock_timeout(lock_timeout);
    let bar = bar(None, "moving");
    let moved = mover
        .on_progress(progress_hook(&bar, true))
        .move_tenant(client, to, &DatabaseRegistry::new(), &tenant)
        .await;
    bar.finish_and_clear();
    let moved = moved.map_err(failure)?;
    for t in &moved.tables {
        println!(
            "  {}: {} rows, sha256 {} verified",
            escaped(&t.name),
            t.rows,
            t.sha256
        );
    }
    println!(
        "moved tenant {} (schema {}) to {}; routes table {}.{} updated",
        escaped(key),
        escaped(tenant.schema().as_str()),
        describe_url(to),
        escaped(routes_schema),
        escaped(routes_table)
    );
    match moved.retired {
        Ok(retired) => {
            println!(
                "the old schema is retired as {} here; purge it later with `tenant tenants purge`",
                escaped(&retired.renamed_to)
            );
            Ok(())
        }
        Err(e) => Err(Failure::Refused(format!(
            "the tenant moved, but its old schema could not be retired here (its tables refuse writes): {}; retire it with `tenant tenants drop {}`",
            crate::wording::operator_message(&e),
            escaped(key)
        ))),
    }
}

/// `database D on H:P` for a database URL, without its user or password.
fn describe_url(url: &str) -> String {
    match url.parse::<tenant_runtime::tokio_postgres::Config>() {
        Ok(config) => {
            let host = match config.get_hosts().first() {
                Some(tenant_runtime::tokio_postgres::config::Host::Tcp(h)) => h.clone(),
                #[cfg(unix)]
                Some(tenant_runtime::tokio_postgres::config::Host::Unix(p)) => {
                    p.display().to_string()
                }
                None => "localhost".to_owned(),
            };
            let port = config.get_ports().first().copied().unwrap_or(5432);
            format!(
                "database {} on {}:{port}",
                escaped(config.get_dbname().unwrap_or("(default)")),
                escaped(&host)
            )
        }
        Err(_) => "the target database".to_owned(),
    }
}
