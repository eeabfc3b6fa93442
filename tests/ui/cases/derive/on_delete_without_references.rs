use tenant_runtime::Model;

#[derive(Model)]
#[tenant(table = "lines")]
struct Line {
    #[tenant(primary_key)]
    id: i64,
    #[tenant(on_delete = "cascade")]
    invoice_id: i64,
}

fn main() {}
