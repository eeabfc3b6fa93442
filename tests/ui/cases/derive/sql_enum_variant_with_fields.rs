use tenant_runtime::SqlEnum;

#[derive(Debug, SqlEnum)]
enum Status {
    Open,
    Closed { reason: String },
}

fn main() {}
