static MIGRATIONS: tenant_runtime::Migrations =
    tenant_runtime::embed_migrations!("migration-fixtures/bad_file_name");

fn main() {
    let _ = MIGRATIONS.len();
}
