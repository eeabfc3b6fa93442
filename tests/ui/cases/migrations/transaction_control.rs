static MIGRATIONS: tenant_runtime::Migrations =
    tenant_runtime::embed_migrations!("migration-fixtures/transaction_control");

fn main() {
    let _ = MIGRATIONS.len();
}
