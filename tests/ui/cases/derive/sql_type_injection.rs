use tenant_runtime::Model;

#[derive(Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key)]
    id: i64,
    #[tenant(sql_type = "TEXT; DROP TABLE users")]
    note: String,
}

fn main() {}
