//! What the archive needs to know about a schema, read from `pg_catalog`: its tables in
//! foreign-key order, their columns and types, primary keys, sequences and migration version.

use std::collections::{BTreeMap, BTreeSet};

use postgres_types::Type;
use tokio_postgres::Client as Pg;

use super::format::{ColumnSpec, SequenceSpec, TableSpec};
use crate::door::SchemaName;
use crate::error::ArchiveError;
use crate::error::Result;
use crate::lifecycle::VERSION_TABLE;

/// Quotes an identifier read from the catalog (it may hold any character).
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"schema"."table"`.
pub(crate) fn qualified(schema: SchemaName, table: &str) -> String {
    format!("{schema}.{}", ident(table))
}

/// The ordinary and partitioned tables of `schema` (not partitions), sorted by name.
pub(crate) async fn table_names(pg: &Pg, schema: SchemaName) -> Result<Vec<String>> {
    let rows = pg
        .query_typed(
            "SELECT c.relname::text FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition \
             ORDER BY c.relname",
            &[(&schema.as_str(), Type::TEXT)],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// `tables` (of `schema`) in load order: every table after the tables it references
/// (self-references need no order); ties by name. A cycle is [`ArchiveError::ForeignKeyCycle`].
pub(crate) async fn load_order(
    pg: &Pg,
    schema: SchemaName,
    tables: &[String],
) -> Result<Vec<String>> {
    let rows = pg
        .query_typed(
            "SELECT c.relname::text, f.relname::text FROM pg_catalog.pg_constraint k \
             JOIN pg_catalog.pg_class c ON c.oid = k.conrelid \
             JOIN pg_catalog.pg_class f ON f.oid = k.confrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE k.contype = 'f' AND n.nspname = $1 AND f.relnamespace = n.oid",
            &[(&schema.as_str(), Type::TEXT)],
        )
        .await?;
    let mut needs: BTreeMap<&str, BTreeSet<String>> = tables
        .iter()
        .map(|t| (t.as_str(), BTreeSet::new()))
        .collect();
    for row in &rows {
        let (from, to): (String, String) = (row.get(0), row.get(1));
        if from != to && tables.contains(&to) {
            if let Some(set) = needs.get_mut(from.as_str()) {
                set.insert(to);
            }
        }
    }
    let mut order: Vec<String> = Vec::with_capacity(tables.len());
    while order.len() < tables.len() {
        let next = needs
            .iter()
            .find(|(t, deps)| {
                !order.iter().any(|o| o == *t) && deps.iter().all(|d| order.contains(d))
            })
            .map(|(t, _)| t.to_string());
        match next {
            Some(t) => order.push(t),
            None => {
                let tables = needs
                    .keys()
                    .filter(|t| !order.iter().any(|o| o == *t))
                    .map(|t| t.to_string())
                    .collect();
                return Err(ArchiveError::ForeignKeyCycle { tables }.into());
            }
        }
    }
    Ok(order)
}

/// Describes `tables` of `schema`, in the order given: columns (not generated ones) in
/// column order with their types (types of `schema` itself unqualified), primary keys,
/// sequences. A missing table is [`ArchiveError::TableMissing`].
pub(crate) async fn describe(
    pg: &Pg,
    schema: SchemaName,
    tables: &[String],
) -> Result<Vec<TableSpec>> {
    // format_type leaves a type unqualified when it is visible on the search path: put the
    // schema alone on it for this one statement (callers are inside a transaction, so
    // `SET LOCAL` ends with it at the latest; every other statement names its schemas).
    pg.batch_execute(&format!("SET LOCAL search_path TO {schema}"))
        .await?;
    let rows = pg
        .query_typed(
            "SELECT c.relname::text, a.attname::text, \
                    pg_catalog.format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, \
                    pg_catalog.pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname), \
                    coalesce(array_position(i.indkey::int2[], a.attnum), 0), \
                    t.typnamespace = n.oid OR coalesce(e.typnamespace = n.oid, false) \
             FROM pg_catalog.pg_attribute a \
             JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
             LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem AND t.typcategory = 'A' \
             LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary \
             WHERE n.nspname = $1 AND c.relname = ANY($2) AND a.attnum > 0 \
               AND NOT a.attisdropped AND a.attgenerated = '' \
             ORDER BY c.relname, a.attnum",
            &[(&schema.as_str(), Type::TEXT), (&tables, Type::TEXT_ARRAY)],
        )
        .await;
    let reset = pg.batch_execute("SET LOCAL search_path TO DEFAULT").await;
    let rows = rows?;
    reset?;
    /// A table, its `(key position, column)`s and its `(column, sequence)`s.
    type Described = (TableSpec, Vec<(i32, String)>, Vec<(String, String)>);
    let mut specs: BTreeMap<String, Described> = BTreeMap::new();
    for row in &rows {
        let table: String = row.get(0);
        let column: String = row.get(1);
        let (spec, key, sequences) = specs.entry(table.clone()).or_insert_with(|| {
            (
                TableSpec {
                    name: table,
                    columns: Vec::new(),
                    primary_key: Vec::new(),
                    sequences: Vec::new(),
                },
                Vec::new(),
                Vec::new(),
            )
        });
        spec.columns.push(ColumnSpec {
            name: column.clone(),
            sql_type: row.get(2),
            nullable: row.get(3),
            schema_type: row.get(6),
        });
        if let Some(sequence) = row.get::<_, Option<String>>(4) {
            sequences.push((column.clone(), sequence));
        }
        let key_position: i32 = row.get(5);
        if key_position > 0 {
            key.push((key_position, column));
        }
    }
    let mut described = Vec::with_capacity(tables.len());
    for table in tables {
        let Some((mut spec, mut key, sequences)) = specs.remove(table) else {
            return Err(ArchiveError::TableMissing {
                schema: schema.as_str().into(),
                table: table.clone(),
            }
            .into());
        };
        key.sort();
        spec.primary_key = key.into_iter().map(|(_, c)| c).collect();
        for (column, sequence) in sequences {
            // The name comes from pg_get_serial_sequence, quoted as needed.
            let rows = pg
                .query_typed(
                    &format!("SELECT last_value, is_called FROM {sequence}"),
                    &[],
                )
                .await?;
            let row = &rows[0];
            spec.sequences.push(SequenceSpec {
                column,
                last_value: row.get(0),
                is_called: row.get(1),
            });
        }
        described.push(spec);
    }
    Ok(described)
}

/// The highest version in `schema`'s version table (`None`: no table, or no row).
pub(crate) async fn migration_version(pg: &Pg, schema: SchemaName) -> Result<Option<u64>> {
    let rows = pg
        .query_typed(
            "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n \
             ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'r'",
            &[(&schema.as_str(), Type::TEXT), (&VERSION_TABLE, Type::TEXT)],
        )
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let rows = pg
        .query_typed(
            &format!(
                "SELECT max(version) FROM {}",
                qualified(schema, VERSION_TABLE)
            ),
            &[],
        )
        .await?;
    Ok(rows[0].get::<_, Option<i64>>(0).map(|v| v as u64))
}

/// `SELECT <columns> FROM <table> ORDER BY <primary key>`, the rows of one table in the
/// order archives hold them.
pub(crate) fn select_rows(schema: SchemaName, spec: &TableSpec) -> String {
    let mut sql = format!(
        "SELECT {} FROM {}",
        column_list(spec),
        qualified(schema, &spec.name)
    );
    if !spec.primary_key.is_empty() {
        let key: Vec<String> = spec.primary_key.iter().map(|k| ident(k)).collect();
        sql.push_str(" ORDER BY ");
        sql.push_str(&key.join(", "));
    }
    sql
}

/// `SELECT <columns> FROM <from table>` whose values fit the columns of the same table in
/// schema `to`: a type of the schema itself (an enum) is another type in `to`, so such
/// columns go through their text form (`col::text::"to".mood`).
pub(crate) fn select_rows_for(from: SchemaName, to: SchemaName, spec: &TableSpec) -> String {
    let columns: Vec<String> = spec
        .columns
        .iter()
        .map(|c| match c.schema_type {
            true => format!("{}::text::{to}.{}", ident(&c.name), c.sql_type),
            false => ident(&c.name),
        })
        .collect();
    format!(
        "SELECT {} FROM {}",
        columns.join(", "),
        qualified(from, &spec.name)
    )
}

/// The quoted column names of `spec`, comma-separated.
pub(crate) fn column_list(spec: &TableSpec) -> String {
    let columns: Vec<String> = spec.columns.iter().map(|c| ident(&c.name)).collect();
    columns.join(", ")
}
