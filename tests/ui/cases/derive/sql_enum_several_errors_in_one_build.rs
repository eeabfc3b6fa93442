use tenant_runtime::{Model, SqlEnum};

// Every mistake of the enum is reported in one build, and the model using it adds none.
#[derive(Debug, SqlEnum)]
#[tenant(rename_all = "Title Case", colour = "red")]
enum Status {
    Open,
    #[tenant(rename = "")]
    Closed,
    Archived(u32),
}

#[derive(Debug, Model)]
#[tenant(table = "tickets")]
struct Ticket {
    #[tenant(primary_key)]
    id: i64,
    status: Status,
}

fn main() {}
