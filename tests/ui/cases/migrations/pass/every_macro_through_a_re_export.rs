//! A library that re-exports the runtime: the derive and every function-like macro reach it
//! through `crate = path`, one syntax for all (a bare path).
mod my_lib {
    pub use tenant_runtime as tenant;
}

#[derive(my_lib::tenant::Model)]
#[tenant(table = "invoices", crate = my_lib::tenant)]
struct Invoice {
    #[tenant(primary_key, identity)]
    id: i64,
    #[tenant(rename = "is_paid")]
    paid: bool,
}

static MIGRATIONS: my_lib::tenant::Migrations = my_lib::tenant::embed_migrations!(
    "migration-fixtures/ok",
    slots = ["shared"],
    crate = my_lib::tenant
);

fn main() {
    let rows = my_lib::tenant::query!(
        crate = my_lib::tenant,
        "SELECT {Invoice.id} FROM {Invoice} WHERE {Invoice.paid} = $1 AND '{1}' <> '}'",
        false
    );
    assert_eq!(
        rows.template().to_string(),
        "SELECT \"id\" FROM {tenant}.\"invoices\" WHERE \"is_paid\" = $1 AND '{1}' <> '}'"
    );
    let models = my_lib::tenant::query_as!(
        crate = my_lib::tenant,
        Invoice,
        "SELECT {Invoice.*} FROM {Invoice} WHERE {Invoice.is_paid} = $1",
        true
    );
    assert_eq!(
        models.template().to_string(),
        "SELECT \"invoices\".\"id\", \"invoices\".\"is_paid\" FROM {tenant}.\"invoices\" WHERE \"is_paid\" = $1"
    );
    let count = my_lib::tenant::query_scalar!(crate = my_lib::tenant, "SELECT count(*) FROM {Invoice}");
    assert_eq!(
        count.template().to_string(),
        "SELECT count(*) FROM {tenant}.\"invoices\""
    );
    assert_eq!(MIGRATIONS.len(), 3);
}
