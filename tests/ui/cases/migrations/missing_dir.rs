static MIGRATIONS: tenant_runtime::Migrations =
    tenant_runtime::embed_migrations!("migration-fixtures/missing_dir");

fn main() {
    let _ = MIGRATIONS.len();
}
