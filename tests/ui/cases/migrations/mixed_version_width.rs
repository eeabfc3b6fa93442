static MIGRATIONS: tenant_runtime::Migrations =
    tenant_runtime::embed_migrations!("migration-fixtures/mixed_version_width");

fn main() {
    let _ = MIGRATIONS.len();
}
