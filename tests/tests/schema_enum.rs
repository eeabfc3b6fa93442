//! `#[derive(SqlEnum)]` on a real PostgreSQL: the enum type lives in each tenant's schema
//! (labels and owner schema read back from `pg_catalog`), is created before the tables that
//! use it and dropped after them; the same enum column round-trips through every path (CRUD,
//! builder filters and updates, `query!`/`query_as!`/`query_scalar!`, `insert_many`,
//! `copy_in`, streaming) in both statement modes, on one connection serving two tenants whose
//! types have different OIDs; and `diff` reports enum types and labels that differ.

use futures_util::TryStreamExt;
use tenant_runtime::model::{Difference, SchemaSnapshot};
use tenant_runtime::{
    query, query_as, query_scalar, Allowlist, Client, Db, Error, Model, ModelSet, Provisioner,
    Registry, SchemaMap, SchemaName, Slot, SqlEnum, StatementMode, Tenant,
};
use tenant_tests::TestSchemas;

#[derive(Debug, Clone, Copy, PartialEq, Eq, SqlEnum)]
#[tenant(type_name = "ticket_status")]
enum Status {
    Open,
    InProgress,
    #[tenant(rename = "closed_for_good")]
    Closed,
}

/// A second enum, in the shared slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, SqlEnum)]
#[tenant(rename_all = "UPPERCASE")]
enum Tier {
    Free,
    Pro,
}

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "tickets")]
struct Ticket {
    #[tenant(primary_key, identity)]
    id: i64,
    title: String,
    #[tenant(index)]
    status: Status,
    previous: Option<Status>,
    history: Vec<Status>,
}

#[derive(Debug, Clone, PartialEq, Model)]
#[tenant(table = "plans", schema = "shared")]
struct Plan {
    #[tenant(primary_key)]
    code: String,
    tier: Tier,
}

fn models() -> ModelSet {
    ModelSet::new().with::<Ticket>().with::<Plan>()
}

fn ticket(title: &str, status: Status, previous: Option<Status>) -> Ticket {
    Ticket {
        id: 0,
        title: title.into(),
        status,
        previous,
        history: previous.into_iter().chain([status]).collect(),
    }
}

/// (schema, type name, labels, type oid) of every enum type in schemas `<prefix>_*`.
async fn enum_types(client: &Client, prefix: &str) -> Vec<(String, String, Vec<String>, u32)> {
    client
        .as_tokio_postgres()
        .query(
            "SELECT n.nspname::text, t.typname::text,
                    ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid
                          ORDER BY e.enumsortorder), t.oid
             FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE t.typtype = 'e' AND n.nspname LIKE $1 || '\\_%'
             ORDER BY 1, 2",
            &[&prefix],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

/// The schema owning the type of column `table.column` in `schema`, and the type's name.
async fn column_type_owner(
    client: &Client,
    schema: &str,
    table: &str,
    column: &str,
) -> (String, String) {
    let row = client
        .as_tokio_postgres()
        .query_one(
            "SELECT tn.nspname::text, t.typname::text
             FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace cn ON cn.oid = c.relnamespace
             JOIN pg_type t ON t.oid = a.atttypid
             JOIN pg_namespace tn ON tn.oid = t.typnamespace
             WHERE cn.nspname = $1 AND c.relname = $2 AND a.attname = $3",
            &[&schema, &table, &column],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn enum_types_live_in_each_tenant_schema_before_their_tables() {
    let schemas = TestSchemas::new("schema_enum_ddl").await;
    let allowlist = schemas.allowlist(&["acme", "globex"]);
    let client = schemas.client_with_shared_slot().await;

    // The DDL: types first, in the model's slot; the column names the slot-qualified type.
    let ddl = models().tenant_tables_ddl().unwrap();
    assert!(
        ddl[0]
            .to_string()
            .starts_with(r#"DO $tenant_enum$ BEGIN CREATE TYPE {tenant}."ticket_status" AS ENUM ('open', 'in_progress', 'closed_for_good');"#),
        "{}",
        ddl[0]
    );
    assert!(ddl[1]
        .to_string()
        .contains(r#""status" {tenant}."ticket_status" NOT NULL, "previous" {tenant}."ticket_status", "history" {tenant}."ticket_status"[] NOT NULL"#));

    models().create_shared_tables(&client, None).await.unwrap();
    for key in ["acme", "globex"] {
        let db = Db::new(&client, &allowlist.resolve(key).unwrap());
        db.create_schema().await.unwrap();
        models().create_tenant_tables(&db).await.unwrap();
        // Idempotent, like the tables: the type exists already.
        models().create_tenant_tables(&db).await.unwrap();
    }

    let (acme, globex, shared) = (
        schemas.name("acme"),
        schemas.name("globex"),
        schemas.name("shared"),
    );
    let labels = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let types = enum_types(&client, schemas.prefix()).await;
    let found: Vec<(&str, &str, &Vec<String>)> = types
        .iter()
        .map(|(s, n, l, _)| (s.as_str(), n.as_str(), l))
        .collect();
    let status_labels = labels(&["open", "in_progress", "closed_for_good"]);
    let tier_labels = labels(&["FREE", "PRO"]);
    assert_eq!(
        found,
        [
            (acme.as_str(), "ticket_status", &status_labels),
            (globex.as_str(), "ticket_status", &status_labels),
            (shared.as_str(), "tier", &tier_labels),
        ]
    );
    assert_ne!(
        types[0].3, types[1].3,
        "each tenant has its own type (own OID)"
    );
    // Each table uses its own schema's type.
    for schema in [&acme, &globex] {
        for column in ["status", "previous"] {
            assert_eq!(
                column_type_owner(&client, schema, "tickets", column).await,
                (schema.clone(), "ticket_status".to_owned())
            );
        }
        assert_eq!(
            column_type_owner(&client, schema, "tickets", "history").await,
            (schema.clone(), "_ticket_status".to_owned()),
            "the array column's type is this schema's array type"
        );
    }
    assert_eq!(
        column_type_owner(&client, &shared, "plans", "tier").await,
        (shared.clone(), "tier".to_owned())
    );

    // One tenant's type changes, the other's does not.
    client
        .as_tokio_postgres()
        .batch_execute(&format!(
            "ALTER TYPE \"{acme}\".ticket_status ADD VALUE 'reopened'"
        ))
        .await
        .unwrap();
    let types = enum_types(&client, schemas.prefix()).await;
    assert_eq!(types[0].2.last().map(String::as_str), Some("reopened"));
    assert_eq!(types[1].2, status_labels);

    // A label the Rust enum does not know fails to decode, naming the type and the label.
    let db = Db::new(&client, &allowlist.resolve("acme").unwrap());
    client
        .as_tokio_postgres()
        .batch_execute(&format!(
            "INSERT INTO \"{acme}\".tickets (title, status, history) VALUES ('x', 'reopened', '{{}}')"
        ))
        .await
        .unwrap();
    match Ticket::query().fetch_all(&db).await {
        Err(Error::Decode { column, source, .. }) => {
            assert_eq!(column, "status");
            // tokio-postgres says which column; its source says why.
            let message = std::error::Error::source(&source)
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                message.contains(r#"enum type "ticket_status" has the label "reopened""#),
                "{message}"
            );
        }
        other => panic!("expected a decode error, got {other:?}"),
    }

    // Dropped after the tables: nothing of the tenant's is left, the other tenant keeps its.
    models().drop_tenant_tables(&db).await.unwrap();
    let left: Vec<String> = enum_types(&client, schemas.prefix())
        .await
        .into_iter()
        .map(|(s, n, _, _)| format!("{s}.{n}"))
        .collect();
    assert_eq!(
        left,
        [format!("{globex}.ticket_status"), format!("{shared}.tier")]
    );
    schemas.cleanup().await;
}

/// Every path, on `client` (one connection), for `tenant`; returns the statuses stored, as
/// text, in id order.
async fn every_path(client: &mut Client, tenant: &Tenant, url_schema: &str) -> Vec<String> {
    use Status::*;
    let mut db = client.for_tenant(tenant);

    // CRUD.
    let stored = ticket("crud", Open, None).insert(&db).await.unwrap();
    assert_eq!((stored.status, stored.previous), (Open, None));
    assert_eq!(stored.history, [Open]);
    let mut changed = stored.clone();
    changed.previous = Some(Open);
    changed.status = InProgress;
    changed.history = vec![Open, InProgress];
    assert!(changed.update(&db).await.unwrap());
    assert_eq!(
        Ticket::get(&db, stored.id).await.unwrap(),
        Some(changed.clone())
    );

    // Bulk: insert_many (one statement), insert_many_returning, copy_in (binary COPY).
    let rows = [
        ticket("many1", Closed, Some(Open)),
        ticket("many2", Open, None),
    ];
    assert_eq!(Ticket::insert_many(&mut db, &rows).await.unwrap(), 2);
    let returned =
        Ticket::insert_many_returning(&mut db, &[ticket("many3", InProgress, Some(Closed))])
            .await
            .unwrap();
    assert_eq!(returned[0].history, [Closed, InProgress]);
    let copied = [
        ticket("copy1", Closed, Some(InProgress)),
        ticket("copy2", Open, None),
    ];
    assert_eq!(Ticket::copy_in(&db, &copied).await.unwrap(), 2);

    // The builder: filters bind the enum (eq, in_list: an array of this schema's type), and
    // an update sets it.
    let in_progress = Ticket::query()
        .filter(Ticket::STATUS.eq(InProgress))
        .order_by(Ticket::ID.asc())
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(
        in_progress
            .iter()
            .map(|t| t.title.as_str())
            .collect::<Vec<_>>(),
        ["crud", "many3"]
    );
    let n = Ticket::query()
        .filter(Ticket::STATUS.in_list([Open, Closed]))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(n, 4);
    assert_eq!(
        Ticket::query()
            .filter(Ticket::PREVIOUS.eq(Some(Closed)))
            .count(&db)
            .await
            .unwrap(),
        1
    );
    let updated = Ticket::query()
        .filter(Ticket::TITLE.eq("copy2"))
        .update()
        .set(Ticket::STATUS, Closed)
        .set(Ticket::PREVIOUS, Some(Open))
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(updated, 1);

    // The checked queries.
    let closed: Vec<Ticket> = query_as!(
        Ticket,
        "SELECT {Ticket.*} FROM {Ticket} WHERE {Ticket.status} = $1 ORDER BY {Ticket.id}",
        Closed
    )
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(
        closed.iter().map(|t| t.title.as_str()).collect::<Vec<_>>(),
        ["many1", "copy1", "copy2"]
    );
    let row = query!(
        "SELECT {Ticket.status}, {Ticket.previous} FROM {Ticket} WHERE {Ticket.title} = $1",
        "copy2"
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(
        (row.get::<_, Status>(0), row.get::<_, Option<Status>>(1)),
        (Closed, Some(Open))
    );
    let status: Status = query_scalar!(
        "SELECT {Ticket.status} FROM {Ticket} WHERE {Ticket.previous} = $1",
        Some(Closed)
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(status, InProgress);
    let moved = query!(
        "UPDATE {Ticket} SET {Ticket.status} = $1 WHERE {Ticket.status} = ANY($2)",
        Open,
        vec![Open]
    )
    .execute(&db)
    .await
    .unwrap();
    assert_eq!(moved, 1, "many2");

    // Streaming.
    let streamed: Vec<Ticket> = Ticket::query()
        .order_by(Ticket::ID.asc())
        .stream(&db)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed.len(), 6);
    assert_eq!(streamed[0], changed);

    // Delete by key.
    assert!(Ticket::delete(&db, stored.id).await.unwrap());

    // What is stored, read as text outside the library.
    client
        .as_tokio_postgres()
        .query(
            &format!("SELECT status::text FROM \"{url_schema}\".tickets ORDER BY id"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn the_same_enum_column_round_trips_through_every_path_in_both_statement_modes() {
    let schemas = TestSchemas::new("schema_enum_paths").await;
    let keys = ["prepared_a", "prepared_b", "unnamed_a", "unnamed_b"];
    let allowlist = schemas.allowlist(&keys);
    let setup = schemas.client_with_shared_slot().await;
    models().create_shared_tables(&setup, None).await.unwrap();
    for key in keys {
        let db = Db::new(&setup, &allowlist.resolve(key).unwrap());
        db.create_schema().await.unwrap();
        models().create_tenant_tables(&db).await.unwrap();
    }
    // many1, many2, many3, copy1, copy2 (crud was deleted).
    let expected = [
        "closed_for_good",
        "open",
        "in_progress",
        "closed_for_good",
        "closed_for_good",
    ];
    for mode in [StatementMode::Prepared, StatementMode::Unnamed] {
        // One connection for two tenants: their types have different OIDs, and each
        // statement must use its own schema's.
        let mut client = Client::connect(schemas.url())
            .await
            .unwrap()
            .with_statement_mode(mode)
            .with_schema_map(
                SchemaMap::new()
                    .with("shared", &schemas.name("shared"))
                    .unwrap(),
            );
        let prefix = match mode {
            StatementMode::Prepared => "prepared",
            _ => "unnamed",
        };
        for side in ["a", "b"] {
            let key = format!("{prefix}_{side}");
            let tenant = allowlist.resolve(&key).unwrap();
            let stored = every_path(&mut client, &tenant, &schemas.name(&key)).await;
            assert_eq!(stored, expected, "{mode:?}, tenant {key}");
        }
        if mode == StatementMode::Unnamed {
            // What named statements the unnamed mode left on the connection: none of the
            // library's; only tokio-postgres' own lookups of the enum types of result
            // columns (it prepares its type-info queries once per connection).
            let left = client
                .as_tokio_postgres()
                .simple_query("SELECT statement FROM pg_prepared_statements")
                .await
                .unwrap();
            for message in left {
                if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
                    let statement = row.get(0).unwrap_or_default();
                    assert!(
                        statement.contains("pg_catalog.pg_type")
                            || statement.contains("pg_catalog.pg_enum"),
                        "a named statement other than a type lookup: {statement}"
                    );
                }
            }
        }
        // The shared slot's enum, through the connection map.
        let db = client.for_tenant(&allowlist.resolve(&format!("{prefix}_a")).unwrap());
        let plan = Plan {
            code: format!("{prefix}_pro"),
            tier: Tier::Pro,
        }
        .insert(&db)
        .await
        .unwrap();
        assert_eq!(
            Plan::query()
                .filter(Plan::TIER.eq(Tier::Pro))
                .fetch_all(&db)
                .await
                .unwrap()
                .last(),
            Some(&plan)
        );
    }
    schemas.cleanup().await;
}

#[tokio::test]
async fn diff_reports_missing_enum_types_and_labels_that_differ() {
    let schemas = TestSchemas::new("schema_enum_diff").await;
    let keys = ["clean", "added_label", "renamed_label", "empty"];
    let allowlist = schemas.allowlist(&keys);
    let client = schemas.client_with_shared_slot().await;
    models().create_shared_tables(&client, None).await.unwrap();
    for key in keys {
        let db = Db::new(&client, &allowlist.resolve(key).unwrap());
        db.create_schema().await.unwrap();
        if key != "empty" {
            models().create_tenant_tables(&db).await.unwrap();
        }
    }
    let alter = |key: &str, sql: &str| sql.replace("{s}", &format!("\"{}\"", schemas.name(key)));
    client
        .as_tokio_postgres()
        .batch_execute(&alter(
            "added_label",
            "ALTER TYPE {s}.ticket_status ADD VALUE 'reopened'",
        ))
        .await
        .unwrap();
    client
        .as_tokio_postgres()
        .batch_execute(&alter(
            "renamed_label",
            "ALTER TYPE {s}.ticket_status RENAME VALUE 'open' TO 'opened'",
        ))
        .await
        .unwrap();
    let names: Vec<SchemaName> = allowlist.tenants().iter().map(|t| t.schema()).collect();
    let snapshot = SchemaSnapshot::read(&client, &names).await.unwrap();
    let diff = |key: &str| {
        let tenant = allowlist.resolve(key).unwrap();
        let expected = models()
            .expected_shape(&Db::new(&client, &tenant), Slot::Tenant)
            .unwrap();
        expected.diff(snapshot.get(tenant.schema()).unwrap())
    };
    let s = |x: &str| x.to_owned();

    let live = snapshot
        .get(allowlist.resolve("clean").unwrap().schema())
        .unwrap();
    assert_eq!(
        live.tables["tickets"].column("history").unwrap().sql_type,
        format!("{}.ticket_status[]", schemas.name("clean")),
        "an enum column's type is read schema-qualified"
    );
    assert_eq!(
        diff("clean"),
        vec![],
        "built from the models: no difference"
    );
    assert_eq!(
        diff("added_label"),
        vec![Difference::ExtraEnumLabel {
            name: s("ticket_status"),
            label: s("reopened")
        }]
    );
    assert_eq!(
        diff("renamed_label"),
        vec![
            Difference::MissingEnumLabel {
                name: s("ticket_status"),
                label: s("open")
            },
            Difference::ExtraEnumLabel {
                name: s("ticket_status"),
                label: s("opened")
            }
        ]
    );
    let empty = diff("empty");
    assert!(
        empty.contains(&Difference::MissingEnum {
            name: s("ticket_status")
        }),
        "{empty:?}"
    );
    assert_eq!(
        Difference::MissingEnum {
            name: s("ticket_status")
        }
        .to_string(),
        r#"enum type "ticket_status" is missing"#
    );
    // The shared schema's enum type too.
    let shared = SchemaName::parse(&schemas.name("shared")).unwrap();
    let shared_live = SchemaSnapshot::read(&client, &[shared]).await.unwrap();
    let expected_shared = models()
        .expected_shape(
            &Db::new(&client, &allowlist.resolve("clean").unwrap()),
            Slot::Named("shared"),
        )
        .unwrap();
    assert_eq!(expected_shared.enums["tier"], ["FREE", "PRO"]);
    assert_eq!(
        expected_shared.diff(shared_live.get(shared).unwrap()),
        vec![]
    );
    schemas.cleanup().await;
}

#[test]
fn labels_follow_rename_all_and_rename() {
    assert_eq!(<Status as SqlEnum>::TYPE_NAME, "ticket_status");
    assert_eq!(
        <Status as SqlEnum>::LABELS,
        ["open", "in_progress", "closed_for_good"]
    );
    assert_eq!(Status::Closed.label(), "closed_for_good");
    assert_eq!(Status::from_label("in_progress"), Some(Status::InProgress));
    assert_eq!(Status::from_label("Closed"), None);
    assert_eq!(<Tier as SqlEnum>::TYPE_NAME, "tier");
    assert_eq!(<Tier as SqlEnum>::LABELS, ["FREE", "PRO"]);
}

#[tokio::test]
async fn provisioning_creates_the_enum_types_in_the_new_tenant_schema() {
    let schemas = TestSchemas::new("schema_enum_provision").await;
    let mut client = Client::connect(schemas.url()).await.unwrap();
    let provisioner = Provisioner::new(ModelSet::new().with::<Ticket>())
        .unwrap()
        .with_registry(Registry::new(&schemas.name("registry")).unwrap());
    provisioner.install(&client).await.unwrap();
    let allowlist = Allowlist::new();
    let acme = provisioner
        .provision(&mut client, &allowlist, "acme", &schemas.name("acme"))
        .await
        .unwrap();
    let types = enum_types(&client, schemas.prefix()).await;
    assert_eq!(
        types
            .iter()
            .map(|(s, n, _, _)| (s.as_str(), n.as_str()))
            .collect::<Vec<_>>(),
        [(schemas.name("acme").as_str(), "ticket_status")]
    );
    let db = client.for_tenant(&acme);
    let stored = ticket("provisioned", Status::InProgress, Some(Status::Open))
        .insert(&db)
        .await
        .unwrap();
    assert_eq!(Ticket::get(&db, stored.id).await.unwrap(), Some(stored));
    schemas.cleanup().await;
}
