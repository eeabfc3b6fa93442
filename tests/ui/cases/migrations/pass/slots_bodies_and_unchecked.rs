//! A valid directory: a declared slot, braces in literals, a function body with placeholders,
//! and an unchecked file.
use tenant_runtime::{Migrations, Slot};

static MIGRATIONS: Migrations =
    tenant_runtime::embed_migrations!("migration-fixtures/ok", slots = ["shared"]);

fn main() {
    let versions: Vec<u64> = MIGRATIONS.iter().map(|m| m.version()).collect();
    assert_eq!(versions, [1, 2, 3]);
    let first = MIGRATIONS.get(1).unwrap();
    let slots: Vec<Slot> = first.template().slots().collect();
    assert_eq!(slots, [Slot::Tenant, Slot::Named("shared")]);
    assert!(first.template().to_string().contains("DEFAULT '{}'"));
    let body = MIGRATIONS.get(2).unwrap().template().to_string();
    assert!(body.contains("SELECT count(*) FROM {tenant}.notes"), "{body}");
    assert_eq!(MIGRATIONS.get(3).unwrap().checksum().len(), 64);
}
