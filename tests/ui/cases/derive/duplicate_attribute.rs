use tenant_runtime::Model;

#[derive(Model)]
#[tenant(table = "invoices", table = "bills")]
struct Invoice {
    #[tenant(primary_key, primary_key)]
    id: i64,
}

fn main() {}
