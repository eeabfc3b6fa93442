// One file with two problems: both are reported in one build.
static MIGRATIONS: tenant_runtime::Migrations =
    tenant_runtime::embed_migrations!("migration-fixtures/placeholder_and_syntax_error");

fn main() {
    let _ = MIGRATIONS.len();
}
