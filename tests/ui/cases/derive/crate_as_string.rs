use tenant_runtime::Model;

#[derive(Model)]
#[tenant(table = "invoices", crate = "tenant_runtime")]
struct Invoice {
    #[tenant(primary_key)]
    id: i64,
}

fn main() {}
