//! [`assert_migrations_build`]: an application's own test that its migrations directory
//! builds exactly its models, so a forgotten migration fails the test suite, not a deploy.

use tenant_runtime::{Client, Migrator, ModelSet};

use crate::database_url;

/// Panics unless `migrator`'s migrations, applied to an empty schema, build exactly the
/// tenant-slot tables of `models` (columns, types, nullability, defaults, identity,
/// constraints, indexes, enum types). The schema is a scratch one inside a transaction that
/// is rolled back, on the database of [`database_url`]; nothing is left behind. The panic
/// lists every difference and says how to write the missing migration.
///
/// Named slots of the migrations are filled by the migrator's map
/// ([`Migrator::with_schema_map`]); the shared tables they name must exist.
///
/// ```no_run
/// use tenant_runtime::{Migrations, Migrator, Model, ModelSet};
///
/// #[derive(Model)]
/// #[tenant(table = "notes")]
/// struct Note { #[tenant(primary_key, identity)] id: i64, body: String }
///
/// // In the application: `static MIGRATIONS: Migrations = embed_migrations!("migrations");`
/// // and this body in a `#[tokio::test]`.
/// async fn the_migrations_build_the_models(migrations: &Migrations) {
///     let models = ModelSet::new().with::<Note>();
///     tenant_testing::assert_migrations_build(&Migrator::new(migrations), &models).await;
/// }
/// ```
pub async fn assert_migrations_build(migrator: &Migrator<'_>, models: &ModelSet) {
    let url = database_url().await;
    let mut client = Client::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("assert_migrations_build: cannot connect to {url}: {e}"));
    let differences = migrator
        .diff_models(&mut client, models)
        .await
        .unwrap_or_else(|e| panic!("assert_migrations_build: {e}"));
    if differences.is_empty() {
        return;
    }
    let list: Vec<String> = differences.iter().map(|d| format!("  - {d}")).collect();
    panic!(
        "the migrations do not build the models ({} difference(s) between what they build and the models):\n{}\n\
         a migration is missing: write it with Migrator::generate (or `tenant migrate generate <name>`), review it, and add it to the migrations directory",
        differences.len(),
        list.join("\n")
    );
}
