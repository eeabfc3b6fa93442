static MIGRATIONS: tenant_runtime::Migrations =
    tenant_runtime::embed_migrations!("migration-fixtures/duplicate_version");

fn main() {
    let _ = MIGRATIONS.len();
}
