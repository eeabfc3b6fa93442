use tenant_runtime::{Client, SchemaName};

fn handle(client: &mut Client) {
    let schema = SchemaName::parse("tenant_acme").unwrap();
    let _db = client.for_tenant(&schema);
}

fn main() {}
