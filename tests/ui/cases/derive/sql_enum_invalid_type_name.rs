use tenant_runtime::SqlEnum;

#[derive(Debug, SqlEnum)]
#[tenant(type_name = "Ticket Status")]
enum Status {
    Open,
    Closed,
}

fn main() {}
