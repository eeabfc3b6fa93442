//! Hostile tenant keys and schema names: each is refused with the right typed error before
//! anything reaches SQL, and a property test over arbitrary strings.

use proptest::prelude::*;
use tenant_runtime::error::AllowlistError;
use tenant_runtime::error::InvalidSchemaName;
use tenant_runtime::sql::Template;
use tenant_runtime::{Allowlist, Error, SchemaName, Slot};

/// What a refused schema name must be refused as.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Refusal {
    Empty,
    TooLong,
    Start,
    Char,
    Reserved,
    /// Valid syntax, but `public` cannot hold a tenant.
    Public,
}

fn classify(e: &Error) -> Refusal {
    match e {
        Error::InvalidSchemaName(InvalidSchemaName::Empty) => Refusal::Empty,
        Error::InvalidSchemaName(InvalidSchemaName::TooLong { .. }) => Refusal::TooLong,
        Error::InvalidSchemaName(InvalidSchemaName::InvalidStart { .. }) => Refusal::Start,
        Error::InvalidSchemaName(InvalidSchemaName::InvalidCharacter { .. }) => Refusal::Char,
        Error::InvalidSchemaName(InvalidSchemaName::Reserved { .. }) => Refusal::Reserved,
        Error::Allowlist(AllowlistError::ReservedSchema { .. }) => Refusal::Public,
        other => panic!("unexpected error kind: {other:?}"),
    }
}

const HOSTILE_SCHEMAS: &[(&str, Refusal)] = &[
    ("public; DROP TABLE users; --", Refusal::Char),
    ("acme\"; --", Refusal::Char),
    ("\"acme\"", Refusal::Char),
    ("acme\"", Refusal::Char),
    ("ACME", Refusal::Start),
    ("Acme", Refusal::Start),
    ("tenant_ACME", Refusal::Char),
    ("", Refusal::Empty),
    (
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        Refusal::TooLong,
    ), // 64
    ("pg_catalog", Refusal::Reserved),
    ("pg_toast", Refusal::Reserved),
    ("pg_temp_1", Refusal::Reserved),
    ("pg_", Refusal::Reserved),
    ("information_schema", Refusal::Reserved),
    ("public", Refusal::Public),
    ("\u{0430}cme", Refusal::Char),    // Cyrillic a
    ("ac\u{043c}e", Refusal::Char),    // Cyrillic m
    ("\u{ff41}cme", Refusal::Char),    // fullwidth a
    ("acme\u{200b}", Refusal::Char),   // zero-width space
    ("\u{130}stanbul", Refusal::Char), // dotted capital I
    ("acme\0", Refusal::Char),
    ("\0", Refusal::Char),
    (" acme", Refusal::Char),
    ("acme ", Refusal::Char),
    ("ac me", Refusal::Char),
    ("acme\t", Refusal::Char),
    ("acme\n", Refusal::Char),
    ("acme\r\nDROP", Refusal::Char),
    ("a.b", Refusal::Char),
    ("public.users", Refusal::Char),
    ("$1", Refusal::Char),
    ("acme$1", Refusal::Char),
    ("'", Refusal::Char),
    ("acme'--", Refusal::Char),
    ("\\", Refusal::Char),
    ("acme\\", Refusal::Char),
    ("1acme", Refusal::Start),
    ("acme-corp", Refusal::Char),
    ("acme/*x*/", Refusal::Char),
    ("acme;", Refusal::Char),
    ("{tenant}", Refusal::Char),
    ("${schema}", Refusal::Char),
    ("%", Refusal::Char),
    ("acme%", Refusal::Char),
];

#[test]
fn hostile_schema_names_are_refused_with_the_right_error() {
    assert!(HOSTILE_SCHEMAS.len() >= 30);
    for (i, (name, expected)) in HOSTILE_SCHEMAS.iter().enumerate() {
        let allowlist = Allowlist::new();
        let err = allowlist
            .insert("victim", name)
            .expect_err(&format!("{name:?} must be refused"));
        assert_eq!(classify(&err), *expected, "case {i}: {name:?} gave {err}");
        assert!(allowlist.is_empty(), "nothing half-added for {name:?}");
        // The message names the input (escaped) and says what is allowed.
        let msg = err.to_string();
        assert!(!msg.is_empty() && !msg.contains('\0'), "{msg:?}");
        // Where SchemaName alone judges it, it agrees.
        if *expected != Refusal::Public {
            assert!(SchemaName::parse(name).is_err(), "{name:?}");
        }
    }
}

/// What a refused tenant key must be refused as.
#[derive(Debug, PartialEq)]
enum KeyRefusal {
    Malformed,
    Unknown,
}

const HOSTILE_KEYS: &[(&str, KeyRefusal)] = &[
    ("", KeyRefusal::Malformed),
    ("acme\0", KeyRefusal::Malformed),
    ("\0acme", KeyRefusal::Malformed),
    (" acme", KeyRefusal::Malformed),
    ("acme ", KeyRefusal::Malformed),
    ("acme\n", KeyRefusal::Malformed),
    ("acme\r", KeyRefusal::Malformed),
    ("acme\t", KeyRefusal::Malformed),
    ("ac\u{1b}[31mme", KeyRefusal::Malformed), // terminal escape
    ("ac\u{7f}me", KeyRefusal::Malformed),
    ("public; DROP TABLE users; --", KeyRefusal::Unknown),
    ("acme\"; --", KeyRefusal::Unknown),
    ("\"acme\"", KeyRefusal::Unknown),
    ("ACME", KeyRefusal::Unknown),
    ("Acme", KeyRefusal::Unknown),
    ("\u{0430}cme", KeyRefusal::Unknown),
    ("tenant_acme", KeyRefusal::Unknown), // the schema is not the key
    ("public", KeyRefusal::Unknown),
    ("pg_catalog", KeyRefusal::Unknown),
    ("information_schema", KeyRefusal::Unknown),
    ("a.b", KeyRefusal::Unknown),
    ("$1", KeyRefusal::Unknown),
    ("'", KeyRefusal::Unknown),
    ("\\", KeyRefusal::Unknown),
    ("../acme", KeyRefusal::Unknown),
    ("acme%", KeyRefusal::Unknown),
    ("*", KeyRefusal::Unknown),
    ("acme' OR '1'='1", KeyRefusal::Unknown),
    ("globex", KeyRefusal::Unknown),
];

#[test]
fn hostile_tenant_keys_never_resolve() {
    assert!(HOSTILE_KEYS.len() >= 25);
    let allowlist = Allowlist::from_pairs([("acme", "tenant_acme")]).unwrap();
    let long = "a".repeat(256);
    let mut cases: Vec<(&str, &KeyRefusal)> = HOSTILE_KEYS.iter().map(|(k, r)| (*k, r)).collect();
    cases.push((&long, &KeyRefusal::Malformed));
    for (key, expected) in cases {
        match (allowlist.resolve(key), expected) {
            (Err(Error::InvalidTenantKey { key: k, .. }), KeyRefusal::Malformed)
            | (Err(Error::UnknownTenant { key: k }), KeyRefusal::Unknown) => assert_eq!(k, key),
            (other, _) => panic!("{key:?}: expected {expected:?}, got {other:?}"),
        }
    }
    assert_eq!(
        allowlist.resolve("acme").unwrap().schema().as_str(),
        "tenant_acme"
    );
}

#[tokio::test]
async fn refused_input_never_reaches_sql() {
    let url = tenant_tests::database_url().await;
    let mut client = tenant_runtime::Client::connect(&url).await.unwrap();
    let allowlist = Allowlist::from_pairs([("acme", "tenant_never_created")]).unwrap();
    let count = Template::builder()
        .sql("SELECT count(*) FROM ")
        .slot(Slot::Tenant)
        .sql(".\"users\"")
        .build();
    for (key, _) in HOSTILE_KEYS {
        if let Ok(tenant) = allowlist.resolve(key) {
            // Unreachable for every hostile key; if it were reached, it would be counted.
            let _ = client.for_tenant(&tenant).fetch_all(&count, &[]).await;
        }
    }
    let stats = client.statement_cache().stats();
    assert_eq!((stats.hits, stats.misses, stats.renders), (0, 0, 0));
}

/// The rule, written independently of the crate.
fn satisfies_rule(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
        && !s.starts_with("pg_")
        && s != "information_schema"
}

fn check_any_string(s: &str) {
    let select = Template::builder()
        .sql("SELECT * FROM ")
        .slot(Slot::Tenant)
        .sql(".\"t\"")
        .build();
    match SchemaName::parse(s) {
        Err(_) => assert!(
            !satisfies_rule(s),
            "{s:?} satisfies the rule yet was refused"
        ),
        Ok(name) => {
            assert!(satisfies_rule(s), "{s:?} was accepted but breaks the rule");
            assert_eq!(name.as_str(), s);
            let sql = select.render(|_| name);
            let inner = sql
                .strip_prefix("SELECT * FROM ")
                .and_then(|r| r.strip_suffix(".\"t\""))
                .expect("only the slot varies");
            // Exactly one quoted identifier, nothing around it, nothing inside to escape.
            assert_eq!(inner, format!("\"{s}\""));
            assert_eq!(inner.matches('"').count(), 2);
            if s != "public" {
                let list = Allowlist::from_pairs([("k", s)]).unwrap();
                assert_eq!(list.resolve("k").unwrap().schema(), name);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_string_is_refused_or_rendered_as_one_quoted_identifier(s in any::<String>()) {
        check_any_string(&s);
    }

    #[test]
    fn near_valid_strings_are_judged_by_the_rule(
        s in "[a-z_][a-z0-9_]{0,70}",
        hostile in prop::sample::select(vec!["", "\"", ";", " ", ".", "A", "\u{0430}", "\0", "-", "pg_", "'"]),
        at in any::<prop::sample::Index>(),
    ) {
        check_any_string(&s);
        let mut mixed = s.clone();
        let pos = at.index(mixed.len() + 1);
        mixed.insert_str(pos, hostile);
        check_any_string(&mixed);
    }
}
