//! The SQL that closes the gap [`SchemaShape::diff`] reports between a schema and the models:
//! what autogenerate ([`Migrator::generate`](crate::Migrator::generate)) writes into a
//! migration file. Every schema in it is a slot placeholder (`{tenant}`, `{shared}`), never a
//! schema name; what cannot be decided from the catalog (a column or a table renamed, or
//! dropped and another added) is written as a commented choice.

use std::collections::BTreeSet;

use super::ddl::{column_definition, column_type, constraint_definition, identity_clause};
use super::diff::{after_renames, renamed_tables, Difference};
use super::inspect::{ConstraintKind, SchemaShape};
use super::{ColumnDef, ConstraintDef, ModelInfo, ModelSet, TableConstraint};
use crate::error::Result;
use crate::sql::{Slot, Template, TemplateBuilder};

impl Difference {
    /// A stable name for the kind of difference, for machine-readable reports
    /// (`missing_table`, `extra_column`, `type_mismatch`, ...: the variant in snake case).
    ///
    /// ```
    /// use tenant_runtime::model::Difference;
    /// let d = Difference::MissingColumn { table: "invoices".into(), column: "note".into() };
    /// assert_eq!(d.kind(), "missing_column");
    /// assert_eq!(d.table(), Some("invoices"));
    /// ```
    pub fn kind(&self) -> &'static str {
        use Difference::*;
        match self {
            MissingTable { .. } => "missing_table",
            ExtraTable { .. } => "extra_table",
            RenamedTable { .. } => "renamed_table",
            MissingColumn { .. } => "missing_column",
            ExtraColumn { .. } => "extra_column",
            RenamedColumn { .. } => "renamed_column",
            TypeMismatch { .. } => "type_mismatch",
            NullabilityMismatch { .. } => "nullability_mismatch",
            DefaultMismatch { .. } => "default_mismatch",
            IdentityMismatch { .. } => "identity_mismatch",
            MissingConstraint { .. } => "missing_constraint",
            ExtraConstraint { .. } => "extra_constraint",
            ConstraintMismatch { .. } => "constraint_mismatch",
            MissingIndex { .. } => "missing_index",
            ExtraIndex { .. } => "extra_index",
            IndexMismatch { .. } => "index_mismatch",
            MissingEnum { .. } => "missing_enum",
            ExtraEnum { .. } => "extra_enum",
            MissingEnumLabel { .. } => "missing_enum_label",
            ExtraEnumLabel { .. } => "extra_enum_label",
        }
    }

    /// The table the difference is about (`None` for enum types; the model's name for a
    /// renamed table).
    pub fn table(&self) -> Option<&str> {
        use Difference::*;
        match self {
            MissingTable { table }
            | ExtraTable { table }
            | RenamedTable {
                expected: table, ..
            }
            | MissingColumn { table, .. }
            | ExtraColumn { table, .. }
            | RenamedColumn { table, .. }
            | TypeMismatch { table, .. }
            | NullabilityMismatch { table, .. }
            | DefaultMismatch { table, .. }
            | IdentityMismatch { table, .. }
            | MissingConstraint { table, .. }
            | ExtraConstraint { table, .. }
            | ConstraintMismatch { table, .. }
            | MissingIndex { table, .. }
            | ExtraIndex { table, .. }
            | IndexMismatch { table, .. } => Some(table),
            MissingEnum { .. }
            | ExtraEnum { .. }
            | MissingEnumLabel { .. }
            | ExtraEnumLabel { .. } => None,
        }
    }
}

/// The body of a migration that turns `live` into `expected` (both in one schema, `expected`
/// being `models`' tenant-slot shape): statements ending in `;`, with comments, and the
/// choices left to the reader and the notes on what no statement can do, one sentence each.
#[derive(Debug, Default)]
pub(crate) struct AlterSql {
    /// The file's text after its header: statements and comments.
    pub(crate) body: String,
    /// How many statements the body runs.
    pub(crate) statements: usize,
    /// Decisions the generator could not take (each also a comment in the body).
    pub(crate) choices: Vec<String>,
    /// Differences no statement closes (each also a comment in the body).
    pub(crate) notes: Vec<String>,
    /// Statements the migration checker's SQL parser does not know (valid PostgreSQL): the
    /// file must say `-- tenant:unchecked`.
    pub(crate) unparsed: Vec<String>,
}

/// Phases of the file, in the order they run: tables renamed first (what follows names
/// them by their new names), what is dropped next frees names (a
/// constraint or index recreated under its name), enum types come before the tables using
/// them, foreign keys after the keys they point at, tables dropped last.
#[derive(Default)]
struct Phases {
    rename_tables: Vec<String>,
    drop_fks: Vec<String>,
    drop_constraints: Vec<String>,
    drop_indexes: Vec<String>,
    enums: Vec<String>,
    drop_columns: Vec<String>,
    create_tables: Vec<String>,
    alter_types: Vec<String>,
    drop_defaults: Vec<String>,
    nullability: Vec<String>,
    identity: Vec<String>,
    set_defaults: Vec<String>,
    add_columns: Vec<String>,
    add_constraints: Vec<String>,
    add_fks: Vec<String>,
    create_indexes: Vec<String>,
    drop_tables: Vec<String>,
    drop_enums: Vec<String>,
}

pub(crate) fn alter_sql(
    models: &ModelSet,
    expected: &SchemaShape,
    live: &SchemaShape,
) -> Result<AlterSql> {
    let order: Vec<&ModelInfo> = models
        .create_order()?
        .into_iter()
        .filter(|m| m.slot == Slot::Tenant)
        .collect();
    let model = |table: &str| order.iter().copied().find(|m| m.table == table);
    let column = |table: &str, name: &str| {
        model(table)?
            .columns
            .iter()
            .find(|c| c.name == name)
            .copied()
    };
    let mut p = Phases::default();
    let mut out = AlterSql::default();
    let mut missing_tables = BTreeSet::new();
    let mut extra_tables = BTreeSet::new();
    // What follows compares with the schema as its renamed tables will be (diff does too).
    let differences = expected.diff(live);
    let (live, renamed_objects) = after_renames(expected, live, &renamed_tables(expected, live));
    let live = &live;
    let stmt = |t: &Template| format!("{t};");

    for d in differences {
        use Difference::*;
        match &d {
            MissingTable { table } => {
                missing_tables.insert(table.clone());
            }
            ExtraTable { table } => {
                extra_tables.insert(table.clone());
            }
            RenamedTable {
                expected: new,
                found: old,
            } => {
                let Some(m) = model(new) else {
                    continue;
                };
                let choice = format!(
                    "table {old:?} is gone from the models and {new:?} is new, with the same columns: written as a RENAME (keeps the rows); if {new:?} is a different table, delete the RENAME statements below and use the commented DROP TABLE and CREATE statements instead"
                );
                let mut sql = format!(
                    "-- CHOICE: {choice}.\n{}",
                    stmt(&alter(old).sql("RENAME TO ").ident(new).build())
                );
                for o in renamed_objects.iter().filter(|o| &o.table == new) {
                    let rename = if o.index {
                        let mut b = Template::builder();
                        b.sql("ALTER INDEX ").table(Slot::Tenant, &o.old);
                        b.sql(" RENAME TO ").ident(&o.new);
                        b.build()
                    } else {
                        alter(new)
                            .sql("RENAME CONSTRAINT ")
                            .ident(&o.old)
                            .sql(" TO ")
                            .ident(&o.new)
                            .build()
                    };
                    sql.push_str(&format!("\n{}", stmt(&rename)));
                    // One entry of the phase, counted once below: the others are counted here.
                    out.statements += 1;
                }
                sql.push_str(&format!("\n-- DROP TABLE {{tenant}}.{};", quote(old)));
                for t in m.create_table() {
                    sql.push_str(&format!("\n-- {}", stmt(&t)));
                }
                p.rename_tables.push(sql);
                out.choices.push(choice);
            }
            MissingColumn { table, column: c } => {
                if let Some(def) = column(table, c) {
                    p.add_columns.push(add_column(table, &def));
                }
            }
            ExtraColumn { table, column: c } => p.drop_columns.push(format!(
                "-- Column {table:?}.{c:?} is in no model: dropped, with its data.\n{}",
                stmt(&alter(table).sql("DROP COLUMN ").ident(c).build())
            )),
            RenamedColumn {
                table,
                expected: new,
                found: old,
            } => {
                let Some(def) = column(table, new) else {
                    continue;
                };
                let rename = alter(table)
                    .sql("RENAME COLUMN ")
                    .ident(old)
                    .sql(" TO ")
                    .ident(new)
                    .build();
                let drop = alter(table).sql("DROP COLUMN ").ident(old).build();
                let choice = format!(
                    "column {table:?}.{old:?} is gone from the model and {new:?} is new, with the same type: written as a RENAME (keeps the data); if {new:?} is a different column, use the commented DROP and ADD instead"
                );
                p.drop_columns.push(format!(
                    "-- CHOICE: {choice}.\n{}\n-- {}\n-- {}",
                    stmt(&rename),
                    stmt(&drop),
                    add_column(table, &def)
                ));
                out.choices.push(choice);
            }
            TypeMismatch {
                table,
                column: c,
                found,
                ..
            } => {
                if let Some(def) = column(table, c) {
                    let mut b = alter(table);
                    b.sql("ALTER COLUMN ").ident(c).sql(" TYPE ");
                    column_type(&mut b, Slot::Tenant, &def);
                    b.sql(" USING ").ident(c).sql("::");
                    column_type(&mut b, Slot::Tenant, &def);
                    p.alter_types.push(format!(
                        "-- {table:?}.{c:?} was {}; USING converts the rows (edit it if a plain cast does not).\n{}",
                        unqualified(found, &live.schema),
                        stmt(&b.build())
                    ));
                }
            }
            NullabilityMismatch {
                table,
                column: c,
                expected_nullable,
            } => {
                let (words, comment) = if *expected_nullable {
                    (" DROP NOT NULL", "")
                } else {
                    (
                        " SET NOT NULL",
                        "-- Fails while a row holds NULL there: update those rows first.\n",
                    )
                };
                p.nullability.push(format!(
                    "{comment}{}",
                    stmt(
                        &alter(table)
                            .sql("ALTER COLUMN ")
                            .ident(c)
                            .sql(words)
                            .build()
                    )
                ));
            }
            DefaultMismatch {
                table, column: c, ..
            } => {
                let raw = column(table, c).and_then(|def| def.default);
                let mut b = alter(table);
                b.sql("ALTER COLUMN ").ident(c);
                match raw {
                    Some(default) => {
                        b.sql(" SET DEFAULT ").sql(default);
                        p.set_defaults.push(stmt(&b.build()));
                    }
                    None => {
                        b.sql(" DROP DEFAULT");
                        p.drop_defaults.push(stmt(&b.build()));
                    }
                }
            }
            IdentityMismatch {
                table,
                column: c,
                expected_identity,
            } => {
                let mut b = alter(table);
                b.sql("ALTER COLUMN ").ident(c);
                if *expected_identity {
                    let options = column(table, c)
                        .map(|d| d.identity_options)
                        .unwrap_or_default();
                    b.sql(" ADD ");
                    identity_clause(&mut b, options);
                    if options.start.is_some() || options.increment.is_some() {
                        out.unparsed
                            .push("ADD GENERATED ... AS IDENTITY (options)".into());
                    }
                } else {
                    b.sql(" DROP IDENTITY IF EXISTS");
                    out.unparsed.push("ALTER COLUMN ... DROP IDENTITY".into());
                }
                p.identity.push(stmt(&b.build()));
            }
            MissingConstraint { table, name, .. } => {
                add_constraint(&mut p, model(table), table, name);
            }
            ConstraintMismatch { table, name, .. } => {
                drop_constraint(&mut p, live, table, name);
                add_constraint(&mut p, model(table), table, name);
            }
            ExtraConstraint { table, name, .. } => {
                drop_constraint(&mut p, live, table, name);
            }
            MissingIndex { table, name, .. } => {
                if let Some(s) = create_index(model(table), name) {
                    p.create_indexes.push(s);
                }
            }
            IndexMismatch { table, name, .. } => {
                p.drop_indexes.push(drop_index(name));
                if let Some(s) = create_index(model(table), name) {
                    p.create_indexes.push(s);
                }
            }
            ExtraIndex { name, .. } => p.drop_indexes.push(drop_index(name)),
            MissingEnum { name } => {
                let labels = expected.enums.get(name).cloned().unwrap_or_default();
                let labels: Vec<String> = labels.iter().map(|l| literal(l)).collect();
                p.enums.push(format!(
                    "CREATE TYPE {{tenant}}.{} AS ENUM ({});",
                    quote(name),
                    labels.join(", ")
                ));
            }
            MissingEnumLabel { name, label } => {
                let labels = expected.enums.get(name).cloned().unwrap_or_default();
                let at = labels.iter().position(|l| l == label);
                let place = match at {
                    Some(i) if i > 0 => format!(" AFTER {}", literal(&labels[i - 1])),
                    Some(0) if labels.len() > 1 => format!(" BEFORE {}", literal(&labels[1])),
                    _ => String::new(),
                };
                p.enums.push(format!(
                    "-- The new label can be used only after this migration's transaction commits.\nALTER TYPE {{tenant}}.{} ADD VALUE IF NOT EXISTS {}{place};",
                    quote(name),
                    literal(label)
                ));
            }
            ExtraEnumLabel { name, label } => {
                let note = format!(
                    "enum type {name:?} has a label {label:?} the Rust enum does not: PostgreSQL cannot drop a label, so no statement is written (recreate the type by hand if it must go)"
                );
                out.body.push_str(&format!("-- NOTE: {note}.\n"));
                out.notes.push(note);
            }
            ExtraEnum { name } => p.drop_enums.push(format!(
                "-- Enum type {name:?} is used by no model: dropped.\nDROP TYPE {{tenant}}.{};",
                quote(name)
            )),
            #[allow(unreachable_patterns)] // a kind of difference added later
            other => {
                let note = format!("{other}: no statement is written for this difference");
                out.body.push_str(&format!("-- NOTE: {note}.\n"));
                out.notes.push(note);
            }
        }
    }
    drop_tables(&mut p, live, &extra_tables);
    for m in order.iter().filter(|m| missing_tables.contains(m.table)) {
        for t in m.create_table() {
            p.create_tables.push(stmt(&t));
        }
    }
    if !out.body.is_empty() {
        out.body.push('\n');
    }
    for phase in [
        p.rename_tables,
        p.drop_fks,
        p.drop_constraints,
        p.drop_indexes,
        p.enums,
        p.drop_columns,
        p.create_tables,
        p.alter_types,
        p.drop_defaults,
        p.nullability,
        p.identity,
        p.set_defaults,
        p.add_columns,
        p.add_constraints,
        p.add_fks,
        p.create_indexes,
        p.drop_tables,
        p.drop_enums,
    ] {
        for s in phase {
            out.statements += 1;
            out.body.push_str(&s);
            out.body.push('\n');
        }
    }
    Ok(out)
}

/// `DROP TABLE` for each of `extra` (tables of `live` no model describes), each after the
/// tables that reference it, so the file runs without `CASCADE` (which would drop what else
/// depends on them unseen). Foreign keys that make a cycle among them are dropped first.
fn drop_tables(p: &mut Phases, live: &SchemaShape, extra: &BTreeSet<String>) {
    // Every foreign key from one table of `extra` to another: (table, constraint, target).
    let mut keys: Vec<(&str, &str, &str)> = Vec::new();
    for t in extra {
        let Some(shape) = live.tables.get(t) else {
            continue;
        };
        for (name, c) in &shape.constraints {
            if let Some(r) = c.references.as_ref() {
                if r.schema == live.schema && &r.table != t && extra.contains(&r.table) {
                    keys.push((t, name, &r.table));
                }
            }
        }
    }
    let mut left: Vec<&str> = extra.iter().map(String::as_str).collect();
    let mut order = Vec::with_capacity(left.len());
    loop {
        // The tables no remaining table references go now: referencing tables first.
        let free: Vec<&str> = left
            .iter()
            .copied()
            .filter(|t| {
                !keys
                    .iter()
                    .any(|(from, _, to)| to == t && left.contains(from))
            })
            .collect();
        if !free.is_empty() {
            left.retain(|t| !free.contains(t));
            order.extend(free);
            continue;
        }
        if left.is_empty() {
            break;
        }
        // Only cycles are left (and tables they reference): the keys within a cycle (from t
        // to a table that leads back to t) are dropped first, in the drop_fks phase.
        let reaches = |from: &str, to: &str| {
            let mut seen: Vec<&str> = vec![from];
            let mut stack = vec![from];
            while let Some(t) = stack.pop() {
                for &(_, _, next) in keys.iter().filter(|(f, _, _)| *f == t) {
                    if next == to {
                        return true;
                    }
                    if left.contains(&next) && !seen.contains(&next) {
                        seen.push(next);
                        stack.push(next);
                    }
                }
            }
            false
        };
        let (cyclic, rest): (Vec<_>, Vec<_>) = keys
            .iter()
            .copied()
            .partition(|(from, _, to)| left.contains(from) && reaches(to, from));
        for (from, name, to) in &cyclic {
            p.drop_fks.push(format!(
                "-- Tables {from:?} and {to:?} are in no model and reference each other: this foreign key goes before them.\n{};",
                alter(from).sql("DROP CONSTRAINT ").ident(name).build()
            ));
        }
        if cyclic.is_empty() {
            // Not reached (a table left over is on a cycle or referenced from one); kept so
            // the loop ends whatever the shape.
            order.append(&mut left);
            break;
        }
        keys = rest;
    }
    for table in order {
        p.drop_tables.push(format!(
            "-- Table {table:?} is in no model: dropped, with its rows.\nDROP TABLE {{tenant}}.{};",
            quote(table)
        ));
    }
}

/// `ALTER TABLE {tenant}."table" `.
fn alter(table: &str) -> TemplateBuilder {
    let mut b = Template::builder();
    b.sql("ALTER TABLE ").table(Slot::Tenant, table).sql(" ");
    b
}

fn quote(name: &str) -> String {
    Template::builder().ident(name).build().to_string()
}

/// A SQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A type as the catalog spells it, with `schema.` (an enum type of this schema) written
/// `{tenant}.` instead: the file names no schema.
fn unqualified(sql_type: &str, schema: &str) -> String {
    match sql_type
        .strip_prefix(schema)
        .and_then(|t| t.strip_prefix('.'))
    {
        Some(rest) if !schema.is_empty() => format!("{{tenant}}.{rest}"),
        _ => sql_type.to_owned(),
    }
}

/// `ALTER TABLE ... ADD COLUMN` with the column as the model's DDL writes it.
fn add_column(table: &str, c: &ColumnDef) -> String {
    let mut b = alter(table);
    b.sql("ADD COLUMN ");
    column_definition(&mut b, Slot::Tenant, c);
    let warn = if !c.nullable && !c.identity && c.default.is_none() {
        format!(
            "-- {table:?}.{:?} is NOT NULL without a default: this fails on a table with rows; add a default or fill it in steps.\n",
            c.name
        )
    } else {
        String::new()
    };
    format!("{warn}{};", b.build())
}

/// `ALTER TABLE ... ADD CONSTRAINT` for the model's constraint `name`.
fn add_constraint(p: &mut Phases, model: Option<&ModelInfo>, table: &str, name: &str) {
    let Some(k) = model.and_then(|m| m.constraints.iter().find(|k| k.name == name)) else {
        return;
    };
    let TableConstraint { name, def } = *k;
    let mut b = alter(table);
    b.sql("ADD CONSTRAINT ").ident(name).sql(" ");
    let fk = matches!(def, ConstraintDef::ForeignKey { .. });
    constraint_definition(&mut b, &def);
    let s = format!("{};", b.build());
    if fk {
        p.add_fks.push(s);
    } else {
        p.add_constraints.push(s);
    }
}

fn drop_constraint(p: &mut Phases, live: &SchemaShape, table: &str, name: &str) {
    let s = format!(
        "{};",
        alter(table).sql("DROP CONSTRAINT ").ident(name).build()
    );
    let kind = live
        .tables
        .get(table)
        .and_then(|t| t.constraints.get(name))
        .map(|c| c.kind);
    if kind == Some(ConstraintKind::ForeignKey) {
        p.drop_fks.push(s);
    } else {
        p.drop_constraints.push(s);
    }
}

/// The model's `CREATE INDEX` statement for index `name` (as its DDL writes it).
fn create_index(model: Option<&ModelInfo>, name: &str) -> Option<String> {
    let m = model?;
    let at = m.indexes.iter().position(|i| i.name == name)?;
    // `create_table` is the table, then one statement per index, in `INDEXES` order.
    m.create_table().get(1 + at).map(|t| format!("{t};"))
}

fn drop_index(name: &str) -> String {
    format!("DROP INDEX {{tenant}}.{};", quote(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(enums: &[(&str, &[&str])]) -> SchemaShape {
        let mut s = SchemaShape::default();
        for (name, labels) in enums {
            s.enums.insert(
                (*name).to_owned(),
                labels.iter().map(|l| (*l).to_owned()).collect(),
            );
        }
        s
    }

    #[test]
    fn enum_types_and_labels_become_create_and_alter_type() {
        let expected = shape(&[
            ("status", &["draft", "sent", "paid"]),
            ("kind", &["a", "b"]),
        ]);
        let live = shape(&[("status", &["draft", "paid", "void"]), ("old", &["x"])]);
        let alter = alter_sql(&ModelSet::new(), &expected, &live).unwrap();
        let body = &alter.body;
        assert!(
            body.contains(r#"CREATE TYPE {tenant}."kind" AS ENUM ('a', 'b');"#),
            "{body}"
        );
        assert!(
            body.contains(
                r#"ALTER TYPE {tenant}."status" ADD VALUE IF NOT EXISTS 'sent' AFTER 'draft';"#
            ),
            "{body}"
        );
        assert!(body.contains(r#"DROP TYPE {tenant}."old";"#), "{body}");
        // A label PostgreSQL cannot drop is a note, not a statement.
        assert_eq!(alter.notes.len(), 1, "{:?}", alter.notes);
        assert!(
            alter.notes[0].contains(r#"label "void""#),
            "{:?}",
            alter.notes
        );
        assert!(body.contains("-- NOTE: "), "{body}");
        assert_eq!(alter.statements, 3);
        // Types are created before the tables that could use them, dropped after.
        let create = body.find("CREATE TYPE").unwrap();
        let drop = body.find("DROP TYPE").unwrap();
        assert!(create < drop);
    }

    /// A live table `name` whose foreign keys point at `targets` (in the same schema).
    fn table_with_fks(name: &str, targets: &[&str]) -> (String, super::super::TableShape) {
        use super::super::{ConstraintShape, Reference};
        let mut t = super::super::TableShape::default();
        for target in targets {
            t.constraints.insert(
                format!("{name}_{target}_fkey"),
                ConstraintShape {
                    kind: ConstraintKind::ForeignKey,
                    columns: vec![format!("{target}_id")],
                    references: Some(Reference {
                        schema: "s".into(),
                        table: (*target).into(),
                        columns: vec!["id".into()],
                        on_delete: super::super::FkAction::NoAction,
                        on_update: super::super::FkAction::NoAction,
                    }),
                    definition: None,
                },
            );
        }
        (name.to_owned(), t)
    }

    #[test]
    fn extra_tables_are_dropped_referencing_first_and_a_cycle_loses_its_keys_first() {
        let mut live = shape(&[]);
        live.schema = "s".into();
        live.tables.extend([
            table_with_fks("a", &[]),
            table_with_fks("b", &["a"]),
            table_with_fks("c", &["b", "a"]),
            // x and y reference each other: no order drops them without dropping a key.
            table_with_fks("x", &["y"]),
            table_with_fks("y", &["x", "a"]),
        ]);
        let alter = alter_sql(&ModelSet::new(), &shape(&[]), &live).unwrap();
        let body = &alter.body;
        let at = |needle: &str| {
            body.find(needle)
                .unwrap_or_else(|| panic!("no {needle:?} in\n{body}"))
        };
        let drop = |t: &str| at(&format!("DROP TABLE {{tenant}}.\"{t}\";"));
        assert!(drop("c") < drop("b") && drop("b") < drop("a"), "{body}");
        assert!(drop("y") < drop("a"), "{body}");
        let x_key = at(r#"ALTER TABLE {tenant}."x" DROP CONSTRAINT "x_y_fkey";"#);
        let y_key = at(r#"ALTER TABLE {tenant}."y" DROP CONSTRAINT "y_x_fkey";"#);
        assert!(
            x_key < drop("x") && y_key < drop("x") && y_key < drop("y"),
            "{body}"
        );
        // The key into a table outside the cycle goes with its table.
        assert!(!body.contains(r#"DROP CONSTRAINT "y_a_fkey""#), "{body}");
        assert_eq!(alter.statements, 7, "{body}");
    }

    #[test]
    fn a_first_label_goes_before_the_next_one() {
        let expected = shape(&[("status", &["new", "draft"])]);
        let live = shape(&[("status", &["draft"])]);
        let alter = alter_sql(&ModelSet::new(), &expected, &live).unwrap();
        assert!(
            alter
                .body
                .contains(r#"ADD VALUE IF NOT EXISTS 'new' BEFORE 'draft';"#),
            "{}",
            alter.body
        );
    }
}
