use tenant_runtime::Model;

#[derive(Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key)]
    id: i64,
}

#[derive(Model)]
#[tenant(table = "lines")]
struct Line {
    #[tenant(primary_key)]
    id: i64,
    #[tenant(references = Invoice, on_delete = "delete")]
    invoice_id: i64,
}

fn main() {}
