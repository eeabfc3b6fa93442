use tenant_runtime::SqlEnum;

#[derive(Debug, SqlEnum)]
#[tenant(rename_all = "snake")]
enum Status {
    Open,
    Closed,
}

fn main() {}
