//! `tenant migrate generate NAME`: the next migration file, from the application's models
//! (`Migrator::generate`), in a `tenant` binary built with them ([`crate::App::with_models`]).

use tenant_runtime::{Migrations, Migrator, ModelSet};

use crate::cli::GenerateArgs;
use crate::commands::{connect, database_url, load_migrations, slot_map};
use crate::show::escaped;
use crate::Failure;

/// What the stock binary says to `migrate generate`.
pub const NO_MODELS: &str = "\
this `tenant` binary does not know the application's models, so it cannot generate a \
migration from them (a model is Rust code compiled into the application). Build the \
application's own `tenant` binary: a src/bin/tenant.rs of three lines, \
`fn main() -> std::process::ExitCode { tenant_cli::App::new().with_models(models()).main() }`, \
with tenant-cli as a dependency; then run `cargo run --bin tenant -- migrate generate NAME`. \
See the README section \"The migration workflow: change a model, generate, review, apply, check\"";

pub async fn generate(
    url: Option<&str>,
    args: &GenerateArgs,
    models: Option<&ModelSet>,
) -> Result<(), Failure> {
    let Some(models) = models else {
        return Err(Failure::Usage(NO_MODELS.to_owned()));
    };
    let url = database_url(url)?;
    let dir = args.migrations.dir();
    // A directory that is not there yet holds no migrations: the first one builds every
    // table. It is created only when there is a file to write.
    let (migrations, map) = if dir.exists() {
        load_migrations(&args.migrations)?
    } else {
        (Migrations::from_static(&[]), slot_map(&args.migrations)?.0)
    };
    let mut client = connect(url).await?;
    let generated = Migrator::new(&migrations)
        .with_schema_map(map)
        .generate(&mut client, models, &args.name)
        .await?;
    let Some(next) = generated else {
        println!(
            "no changes: the migrations in {} build the models; nothing was written",
            dir.display()
        );
        return Ok(());
    };
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(|e| {
            Failure::Refused(format!(
                "cannot create the migrations directory {}: {e}",
                dir.display()
            ))
        })?;
        println!(
            "created the migrations directory {} (it did not exist)",
            dir.display()
        );
    }
    let path = next.write_to(dir)?;
    println!(
        "wrote {} (version {}): it closes {} difference(s) between what the migrations up to {} build and the models:",
        path.display(),
        next.version,
        next.differences.len(),
        migrations
            .latest_version()
            .map_or("none".to_owned(), |v| v.to_string()),
    );
    for d in &next.differences {
        println!("  {}", escaped(&d.to_string()));
    }
    // What the file leaves to a person goes to stderr, where warnings go, each on its own.
    let choices = next.choices.len();
    for (i, choice) in next.choices.iter().enumerate() {
        eprintln!(
            "warning: CHOICE {} of {choices}, to decide by hand before applying (the line `-- CHOICE:` in {}): {choice}",
            i + 1,
            path.display()
        );
    }
    for note in &next.notes {
        eprintln!("note: {note}");
    }
    println!(
        "review {}{}, then apply it with `tenant migrate --all` and check with `tenant check`",
        path.display(),
        match choices {
            0 => String::new(),
            n => format!(" and decide its {n} CHOICE(S)"),
        }
    );
    Ok(())
}
