static MIGRATIONS: tenant_runtime::Migrations =
    tenant_runtime::embed_migrations!("migration-fixtures/model_placeholder");

fn main() {
    let _ = MIGRATIONS.len();
}
