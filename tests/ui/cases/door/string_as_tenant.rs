use tenant_runtime::Client;

fn handle(client: &mut Client, key: String) {
    let _db = client.for_tenant(&key);
}

fn main() {}
