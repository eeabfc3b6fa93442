use tenant_runtime::{query, Model};

#[derive(Model)]
#[tenant(table = "invoices")]
struct Invoice {
    #[tenant(primary_key, identity)]
    id: i64,
    paid: bool,
    #[tenant(rename = "remark")]
    note: Option<String>,
}

// The column is used twice and tied to an argument: still one error, naming it.
fn main() {
    let _ = query!(
        "SELECT {i.payd} FROM {Invoice AS i} WHERE {i.payd} = $1",
        true
    );
}
