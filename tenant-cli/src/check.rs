//! `tenant check`: every active tenant's schema against the application's models, in a
//! binary built with them (`Expected::Models`), else against what the migrations build.
//!
//! The stock binary has no Rust models, so its reference is the migrations directory, applied
//! to a scratch schema inside a transaction that is rolled back (`Expected::Migrations`); in
//! its test suite an application keeps the two equal with
//! `tenant_testing::assert_migrations_build`.

use serde::Serialize;
use tenant_runtime::lifecycle::applied_by_newer_build;
use tenant_runtime::lifecycle::{Connections, DriftReport, DriftState, Expected};
use tenant_runtime::{Migrator, ModelSet, Registry};

use crate::cli::{CheckArgs, Format};
use crate::commands::{connect, load_migrations, select_tenants};
use crate::show::{escaped, print_json};
use crate::wording::operator_message;
use crate::Failure;

/// `--help` of `check --format`: the JSON shape, which stays stable (fields may be added,
/// none removed or changed).
pub const CHECK_JSON: &str = "\
Output format: text (the tenants that differ, then a summary) or json (one JSON document on stdout).

The JSON shape (fields may be added, none is removed or changes meaning):
  {\"registry\": \"tenant_registry\",
   \"against\": \"models\" | \"migrations\",
   \"migrations\": {\"dir\": \"migrations\", \"latest_version\": null | 3},
   \"tenants\": [{\"key\": \"acme\", \"schema\": \"tenant_acme\",
                \"state\": \"clean\" | \"drifted\" | \"failed\",
                \"version\": null | 2, \"pending\": [3], \"unknown_applied\": [4],
                \"differences\": [{\"kind\": \"missing_column\", \"table\": null | \"invoices\",
                                 \"message\": \"table \\\"invoices\\\" has no column \\\"note\\\"\"}],
                \"error\": null | \"why the schema could not be checked\"}],
   \"summary\": {\"checked\": 1, \"clean\": 0, \"drifted\": 1, \"behind\": 1, \"failed\": 0,
               \"ahead\": 0}}
\"against\" is \"models\" in a `tenant` binary built with the application's models, else
\"migrations\" (what the migrations directory builds). \"version\" is the highest applied
migration (null: none); \"pending\" lists the versions not applied; \"unknown_applied\" lists
versions applied that these migrations do not have (a newer build migrated the tenant;
\"ahead\" counts such tenants); \"kind\" is one of missing_table, extra_table, renamed_table,
missing_column, extra_column, renamed_column, type_mismatch, nullability_mismatch,
default_mismatch, identity_mismatch, missing_constraint, extra_constraint,
constraint_mismatch, missing_index, extra_index, index_mismatch, missing_enum, extra_enum,
missing_enum_label, extra_enum_label.
A tenant is clean when it has no pending or unknown migration and no difference. Tenants
are in registry-key order.";

#[derive(Serialize)]
struct CheckJson<'a> {
    registry: &'a str,
    against: &'static str,
    migrations: MigrationsJson,
    tenants: Vec<CheckedTenant>,
    summary: Summary,
}

#[derive(Serialize)]
struct MigrationsJson {
    dir: String,
    latest_version: Option<u64>,
}

#[derive(Serialize)]
struct CheckedTenant {
    key: String,
    schema: String,
    state: &'static str,
    version: Option<u64>,
    pending: Vec<u64>,
    differences: Vec<DifferenceJson>,
    error: Option<String>,
    // Versions applied by a newer build (TenantDrift::unknown_applied).
    unknown_applied: Vec<u64>,
}

#[derive(Serialize)]
struct DifferenceJson {
    kind: &'static str,
    table: Option<String>,
    message: String,
}

#[derive(Serialize, Default)]
struct Summary {
    checked: usize,
    clean: usize,
    drifted: usize,
    behind: usize,
    failed: usize,
    // Tenants with versions applied by a newer build.
    ahead: usize,
}

pub async fn check(
    url: &str,
    registry: &Registry,
    args: CheckArgs,
    models: Option<&ModelSet>,
) -> Result<(), Failure> {
    let (expected, against) = match models {
        Some(models) => (Expected::Models(models), "models"),
        None => (Expected::Migrations, "migrations"),
    };
    let (migrations, map) = load_migrations(&args.migrations)?;
    let client = connect(url).await?;
    // A registry row the library refuses is warned of and skipped; the run then exits 1.
    let (tenants, skipped) =
        select_tenants(&client, registry, args.tenant.is_empty(), &args.tenant).await?;
    drop(client);
    let jobs = usize::from(args.jobs);
    // Connections first, so an unreachable server is exit 3, not a check failure.
    let mut clients = Vec::with_capacity(jobs);
    for _ in 0..jobs.min(tenants.len().div_ceil(500)).max(1) {
        clients.push(connect(url).await?);
    }
    let report = Migrator::new(&migrations)
        .with_schema_map(map)
        .check(Connections::from(&mut clients), &tenants, expected)
        .await?;
    let (tenants, summary) = lines(&report);
    if args.format == Format::Json {
        print_json(&CheckJson {
            registry: registry.schema().as_str(),
            against,
            migrations: MigrationsJson {
                dir: args.migrations.dir().display().to_string(),
                latest_version: migrations.latest_version(),
            },
            tenants,
            summary,
        })
        .map_err(|e| Failure::Refused(format!("cannot write the output: {e}")))?;
    } else {
        print_text(&report, &tenants, &summary, models.is_some());
    }
    if report.is_clean() && skipped == 0 {
        Ok(())
    } else {
        Err(Failure::TenantsFailed)
    }
}

fn lines(report: &DriftReport) -> (Vec<CheckedTenant>, Summary) {
    let mut summary = Summary {
        checked: report.tenants.len(),
        ..Summary::default()
    };
    let mut out = Vec::with_capacity(report.tenants.len());
    for t in &report.tenants {
        let mut line = CheckedTenant {
            key: t.tenant.key().to_owned(),
            schema: t.tenant.schema().as_str().to_owned(),
            state: "clean",
            version: t.version,
            pending: t.pending.clone(),
            differences: Vec::new(),
            error: None,
            unknown_applied: t.unknown_applied.clone(),
        };
        match &t.state {
            DriftState::Clean => {}
            DriftState::Drifted(differences) => {
                line.state = "drifted";
                line.differences = differences
                    .iter()
                    .map(|d| DifferenceJson {
                        kind: d.kind(),
                        table: d.table().map(str::to_owned),
                        message: d.to_string(),
                    })
                    .collect();
            }
            DriftState::Failed(e) => {
                line.state = "failed";
                line.error = Some(operator_message(e));
            }
            _ => {
                line.state = "failed";
                line.error = Some(t.state.to_string());
            }
        }
        match line.state {
            "failed" => summary.failed += 1,
            "drifted" => summary.drifted += 1,
            _ => {}
        }
        if !t.pending.is_empty() {
            summary.behind += 1;
        }
        if t.is_clean() {
            summary.clean += 1;
        }
        // Versions applied by a newer build.
        if !t.unknown_applied.is_empty() {
            summary.ahead += 1;
        }
        out.push(line);
    }
    (out, summary)
}

/// `against_models`: the binary was built with the application's models.
fn print_text(
    report: &DriftReport,
    tenants: &[CheckedTenant],
    summary: &Summary,
    against_models: bool,
) {
    let reference = if against_models {
        "the models"
    } else {
        "what the migrations build"
    };
    // Clean tenants are the quiet majority: only the others get lines.
    for t in tenants
        .iter()
        .filter(|t| t.state != "clean" || !t.pending.is_empty() || !t.unknown_applied.is_empty())
    {
        let version = t.version.map_or("none".to_owned(), |v| v.to_string());
        let mut head = format!(
            "{} ({}): version {version}",
            escaped(&t.key),
            escaped(&t.schema)
        );
        if !t.pending.is_empty() {
            let pending: Vec<String> = t.pending.iter().map(u64::to_string).collect();
            head.push_str(&format!(", lacks {}", pending.join(", ")));
        }
        // Versions applied by a newer build.
        if !t.unknown_applied.is_empty() {
            head.push_str(&format!(", {}", applied_by_newer_build(&t.unknown_applied)));
        }
        match (&t.error, t.differences.len()) {
            (Some(e), _) => println!("{head}: FAILED: {e}"),
            (None, 0) => println!("{head}"),
            (None, n) => {
                println!("{head}: {n} difference(s) from {reference}");
                for d in &t.differences {
                    println!("  {}", escaped(&d.message));
                }
            }
        }
    }
    let latest = report
        .latest_version
        .map_or("none".to_owned(), |v| v.to_string());
    let reference = if against_models {
        format!("the models (migrations up to {latest})")
    } else {
        format!("migrations up to {latest}")
    };
    println!(
        "{} tenant(s) checked against {reference} in {:.1?}: {} clean, {} drifted, {} behind, {} ahead, {} failed",
        summary.checked,
        report.elapsed,
        summary.clean,
        summary.drifted,
        summary.behind,
        summary.ahead,
        summary.failed
    );
}
