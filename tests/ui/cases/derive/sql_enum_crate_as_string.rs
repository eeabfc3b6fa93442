use tenant_runtime::SqlEnum;

#[derive(Debug, SqlEnum)]
#[tenant(crate = "tenant_runtime")]
enum Status {
    Open,
    Closed,
}

fn main() {}
