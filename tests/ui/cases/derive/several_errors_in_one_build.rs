use tenant_runtime::Model;

// Every mistake below is reported in the same build.
#[derive(Model)]
#[tenant(table = "Invoices", schema = "pg_shared", colour = "blue")]
struct Invoice {
    #[tenant(primary_key, indexed)]
    id: i64,
    #[tenant(rename = "id")]
    other_id: i64,
    #[tenant(default = "0; DROP TABLE users")]
    amount: i64,
}

fn main() {}
