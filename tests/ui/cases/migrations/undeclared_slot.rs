static MIGRATIONS: tenant_runtime::Migrations =
    tenant_runtime::embed_migrations!("migration-fixtures/undeclared_slot");

fn main() {
    let _ = MIGRATIONS.len();
}
