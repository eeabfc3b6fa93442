use tenant_runtime::SqlEnum;

#[derive(Debug, SqlEnum)]
struct Status {
    open: bool,
}

fn main() {}
