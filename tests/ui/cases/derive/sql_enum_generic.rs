use tenant_runtime::SqlEnum;

#[derive(Debug, SqlEnum)]
enum Status<T> {
    Open,
    Closed(T),
}

fn main() {}
