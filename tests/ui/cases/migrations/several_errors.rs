static MIGRATIONS: tenant_runtime::Migrations =
    tenant_runtime::embed_migrations!("migration-fixtures/several_errors");

fn main() {
    let _ = MIGRATIONS.len();
}
