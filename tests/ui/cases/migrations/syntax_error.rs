static MIGRATIONS: tenant_runtime::Migrations =
    tenant_runtime::embed_migrations!("migration-fixtures/syntax_error");

fn main() {
    let _ = MIGRATIONS.len();
}
