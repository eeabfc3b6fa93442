static MIGRATIONS: tenant_runtime::Migrations =
    tenant_runtime::embed_migrations!("migration-fixtures/empty_file");

fn main() {
    let _ = MIGRATIONS.len();
}
