//! Autogenerate ([`Migrator::generate`]): the existing migrations applied to a scratch schema
//! (inside a transaction that is rolled back), diffed with the [`ModelSet`], and the next
//! migration file written with the SQL that closes the gap: Alembic's `revision
//! --autogenerate`, Django's `makemigrations`.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{MigrateError, Result};
use crate::exec::{Client, Db};
use crate::lifecycle::check::{scratch_shape, scratch_tenant};
use crate::lifecycle::Migrator;
use crate::model::{alter_sql, Difference, ModelSet};
use crate::sql::Slot;

/// The next migration file, as [`Migrator::generate`] wrote it: review it (and its
/// [`choices`](GeneratedMigration::choices)), then [`write_to`](GeneratedMigration::write_to)
/// the migrations directory.
///
/// ```no_run
/// # use tenant_runtime::{embed_migrations, Client, Migrations, Migrator, Model, ModelSet};
/// # #[derive(Model)] #[tenant(table = "notes")] struct Note { #[tenant(primary_key, identity)] id: i64, pinned: bool }
/// # static MIGRATIONS: Migrations = embed_migrations!("examples/migrations");
/// # async fn run() -> Result<(), tenant_runtime::Error> {
/// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
/// let models = ModelSet::new().with::<Note>();
/// if let Some(next) = Migrator::new(&MIGRATIONS).generate(&mut client, &models, "add_pinned").await? {
///     println!("{}: {} difference(s)", next.file_name, next.differences.len());
///     for choice in &next.choices {
///         println!("to decide: {choice}");
///     }
///     let path = next.write_to("migrations")?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GeneratedMigration {
    /// Its version: one above the latest existing migration.
    pub version: u64,
    /// Its name, as given.
    pub name: String,
    /// `<version>_<name>.sql`, the version as wide as the existing files' (`0003_add_paid.sql`).
    pub file_name: String,
    /// The file's text: a header, then the statements, every schema a slot placeholder
    /// (`{tenant}`, `{shared}`).
    pub sql: String,
    /// What the differences between the migrations and the models are (what the file closes).
    pub differences: Vec<Difference>,
    /// Decisions the generator could not take from the catalog, each written in the file as
    /// a commented alternative (a column or a table renamed, or dropped and another added):
    /// read them.
    pub choices: Vec<String>,
    /// Differences no statement can close (an enum label PostgreSQL cannot drop), each a
    /// comment in the file; and, when the file holds a statement the checks' SQL parser does
    /// not know (`DROP IDENTITY`), that its parse is skipped (`-- tenant:unchecked`).
    pub notes: Vec<String>,
}

impl GeneratedMigration {
    /// Writes the file into `dir` (which must exist) and returns its path. Refuses to
    /// overwrite a file of the same name ([`MigrateError::WriteFailed`]).
    pub fn write_to(&self, dir: impl AsRef<Path>) -> Result<PathBuf> {
        let path = dir.as_ref().join(&self.file_name);
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| f.write_all(self.sql.as_bytes()));
        written.map_err(|source| MigrateError::WriteFailed {
            path: path.display().to_string(),
            source,
        })?;
        Ok(path)
    }
}

impl fmt::Display for GeneratedMigration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.sql)
    }
}

impl Migrator<'_> {
    /// How what the migrations build differs from the tenant-slot tables of `models`: the
    /// migrations are applied, all of them, to a scratch schema inside a transaction on
    /// `client` that is rolled back (nothing is left behind), the schema is read and diffed.
    /// Empty when the migrations build exactly the models; otherwise a migration is missing
    /// (write it with [`Migrator::generate`]). Named slots are filled by the migrator's map,
    /// then the client's; the shared tables the migrations name must exist.
    ///
    /// ```no_run
    /// # use tenant_runtime::{embed_migrations, Client, Migrations, Migrator, Model, ModelSet};
    /// # #[derive(Model)] #[tenant(table = "notes")] struct Note { #[tenant(primary_key, identity)] id: i64 }
    /// # static MIGRATIONS: Migrations = embed_migrations!("examples/migrations");
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// let models = ModelSet::new().with::<Note>();
    /// for d in Migrator::new(&MIGRATIONS).diff_models(&mut client, &models).await? {
    ///     eprintln!("the migrations do not build the models: {d}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn diff_models(
        &self,
        client: &mut Client,
        models: &ModelSet,
    ) -> Result<Vec<Difference>> {
        Ok(self.built_and_expected(client, models).await?.0)
    }

    async fn built_and_expected(
        &self,
        client: &mut Client,
        models: &ModelSet,
    ) -> Result<(
        Vec<Difference>,
        crate::model::SchemaShape,
        crate::model::SchemaShape,
    )> {
        models.validate()?;
        let tenant = scratch_tenant()?;
        let mut live =
            scratch_shape(client, &tenant, self.migrations(), self.schema_map(), None).await?;
        // The catalog's definitions name the scratch schema; differences (and the file's
        // comments quoting them) say `{tenant}` instead.
        let scratch = tenant.schema();
        for table in live.tables.values_mut() {
            let definitions = table
                .constraints
                .values_mut()
                .filter_map(|c| c.definition.as_mut())
                .chain(
                    table
                        .indexes
                        .values_mut()
                        .filter_map(|i| i.definition.as_mut()),
                );
            for d in definitions {
                *d = d.replace(scratch.as_str(), "{tenant}");
            }
        }
        let db = Db::new(&*client, &tenant).with_schema_map(self.schema_map().clone());
        let expected = models.expected_shape(&db, Slot::Tenant)?;
        Ok((expected.diff(&live), expected, live))
    }

    /// Autogenerate: the next migration, with the SQL that turns what the existing
    /// migrations build into the tenant-slot tables of `models` (tables, columns, types,
    /// nullability, defaults, identity, constraints, indexes, enum types and labels), or
    /// `None` when they agree already. Nothing is written: review the result, then
    /// [`write_to`](GeneratedMigration::write_to) the migrations directory.
    ///
    /// The file uses `{tenant}` and named-slot placeholders, never a schema name, and
    /// passes the checks of [`embed_migrations!`](crate::embed_migrations) (with the feature
    /// `migrations-dir` it is checked here by the same rules before it is returned). What the
    /// catalog cannot tell (a column or a table renamed, or dropped and another added) is
    /// written as the rename, with the drop and add (or create) commented below it, and
    /// listed in [`choices`](GeneratedMigration::choices). Tables no model describes are
    /// dropped after the tables that reference them. `name` must be `[a-z0-9_]+`
    /// ([`MigrateError::Invalid`] otherwise).
    ///
    /// ```no_run
    /// # use tenant_runtime::{embed_migrations, Client, Migrations, Migrator, Model, ModelSet};
    /// # #[derive(Model)] #[tenant(table = "notes")] struct Note { #[tenant(primary_key, identity)] id: i64, pinned: bool }
    /// # static MIGRATIONS: Migrations = embed_migrations!("examples/migrations");
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// let models = ModelSet::new().with::<Note>();
    /// match Migrator::new(&MIGRATIONS).generate(&mut client, &models, "add_pinned").await? {
    ///     Some(next) => println!("wrote {}", next.write_to("migrations")?.display()),
    ///     None => println!("the migrations build the models already"),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn generate(
        &self,
        client: &mut Client,
        models: &ModelSet,
        name: &str,
    ) -> Result<Option<GeneratedMigration>> {
        let migrations = self.migrations();
        let version = migrations.latest_version().unwrap_or(0) + 1;
        let width = migrations
            .iter()
            .next()
            .map(|m| m.file_name().bytes().take_while(u8::is_ascii_digit).count())
            .unwrap_or(4);
        let file_name = format!("{version:0width$}_{name}.sql");
        tenant_sql::parse_file_name(&file_name).map_err(|problem| MigrateError::Invalid {
            problems: vec![format!("{file_name}: {problem}")],
        })?;
        let (differences, expected, live) = self.built_and_expected(client, models).await?;
        // Enum column types and defaults name the scratch schema: what is returned (and
        // written in the file's header) says `{tenant}`, as the file's statements do.
        let differences: Vec<Difference> = differences
            .into_iter()
            .map(|d| without_schema(d, &live.schema))
            .collect();
        if differences.is_empty() {
            return Ok(None);
        }
        let alter = alter_sql(models, &expected, &live)?;
        if alter.statements == 0 {
            // Only differences no statement closes: there is no migration to write.
            return Ok(None);
        }
        let mut sql = format!(
            "-- {file_name}: generated by tenant's autogenerate from the models; review it before applying.\n\
             -- It closes {} difference(s) between what migrations up to {} build and the models:\n",
            differences.len(),
            migrations.latest_version().map_or("none".to_owned(), |v| v.to_string())
        );
        for d in &differences {
            sql.push_str(&format!("--   {}\n", one_line(&d.to_string())));
        }
        if !alter.unparsed.is_empty() {
            // Valid PostgreSQL the checker's parser does not know: the marker makes
            // embed_migrations! (and the run-time loader) skip the parse, nothing else.
            sql.push_str(&format!(
                "-- The SQL parser of the migration checks does not know {}, so:\n-- tenant:unchecked\n",
                alter.unparsed.join(" and ")
            ));
        }
        if !alter.choices.is_empty() {
            sql.push_str(&format!(
                "-- {} CHOICE(S) to review below, marked CHOICE.\n",
                alter.choices.len()
            ));
        }
        sql.push('\n');
        sql.push_str(&alter.body);
        #[cfg(feature = "migrations-dir")]
        {
            let slots: Vec<&str> = models
                .models()
                .iter()
                .filter_map(|m| m.slot.name())
                .collect();
            tenant_sql::check_file(&file_name, &sql, &slots).map_err(|errors| {
                MigrateError::Invalid {
                    problems: errors.iter().map(|e| e.to_string()).collect(),
                }
            })?;
        }
        Ok(Some(GeneratedMigration {
            version,
            name: name.to_owned(),
            file_name,
            sql,
            differences,
            choices: alter.choices,
            notes: alter
                .notes
                .into_iter()
                .chain(alter.unparsed.iter().map(|what| {
                    format!("the checks' SQL parser does not know {what}: the file is marked `-- tenant:unchecked`")
                }))
                .collect(),
        }))
    }
}

/// `d` with `schema` (the scratch schema) named `{tenant}` in the column types and defaults
/// it quotes: the only parts of a difference where the catalog names a schema (an enum
/// type's owner); constraint and index definitions are rewritten before the diff.
fn without_schema(d: Difference, schema: &str) -> Difference {
    let placeholder = |text: String| text.replace(schema, "{tenant}");
    match d {
        Difference::TypeMismatch {
            table,
            column,
            expected,
            found,
        } => Difference::TypeMismatch {
            table,
            column,
            expected: placeholder(expected),
            found: placeholder(found),
        },
        Difference::DefaultMismatch {
            table,
            column,
            expected,
            found,
        } => Difference::DefaultMismatch {
            table,
            column,
            expected: expected.map(placeholder),
            found: found.map(placeholder),
        },
        other => other,
    }
}

/// `text` on one line (a comment must not end early).
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}
