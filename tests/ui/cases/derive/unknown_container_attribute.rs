use tenant_runtime::Model;

#[derive(Model)]
#[tenant(tabel = "invoices")]
struct Invoice {
    #[tenant(primary_key)]
    id: i64,
}

fn main() {}
