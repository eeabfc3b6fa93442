use tenant_runtime::Model;

#[derive(Model)]
#[tenant(table = "lines")]
struct Line {
    #[tenant(primary_key)]
    invoice_id: i64,
    #[tenant(primary_key)]
    position: i32,
}

#[derive(Model)]
#[tenant(table = "notes", foreign_key(columns(invoice_id), references = Line))]
struct Note {
    #[tenant(primary_key)]
    id: i64,
    invoice_id: i64,
}

fn main() {}
