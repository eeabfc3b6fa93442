use tenant_runtime::Model;

#[derive(Model)]
#[tenant(table = "invoices\"; DROP TABLE users; --")]
struct Invoice {
    #[tenant(primary_key)]
    id: i64,
}

fn main() {}
