static MIGRATIONS: tenant_runtime::Migrations =
    tenant_runtime::embed_migrations!("migration-fixtures/ok", slot = ["shared"]);

fn main() {
    let _ = MIGRATIONS.len();
}
