use tenant_runtime::SqlEnum;

#[derive(Debug, SqlEnum)]
#[tenant(type_name = "status", type_name = "state")]
enum Status {
    Open,
    Closed,
}

fn main() {}
