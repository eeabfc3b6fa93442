use tenant_runtime::Client;

fn handle(client: &mut Client) {
    let _db = client.for_tenant("acme");
}

fn main() {}
