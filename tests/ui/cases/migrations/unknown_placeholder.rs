static MIGRATIONS: tenant_runtime::Migrations =
    tenant_runtime::embed_migrations!("migration-fixtures/unknown_placeholder");

fn main() {
    let _ = MIGRATIONS.len();
}
