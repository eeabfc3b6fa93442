//! [`SchemaShape::diff`]: what a live schema lacks, has in excess, or holds differently from
//! what the models expect, as a list of typed [`Difference`]s.

use std::collections::BTreeSet;
use std::fmt;

use super::inspect::{same_constraint, same_index, ColumnShape, SchemaShape, TableShape};

/// One way a live schema differs from the expected one. Each prints as a sentence.
///
/// ```
/// use tenant_runtime::model::Difference;
///
/// let d = Difference::MissingColumn { table: "invoices".into(), column: "note".into() };
/// assert_eq!(d.to_string(), r#"table "invoices" has no column "note""#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Difference {
    /// A table the models have is not in the schema.
    MissingTable {
        /// The table.
        table: String,
    },
    /// The schema has a table no model describes.
    ExtraTable {
        /// The table.
        table: String,
    },
    /// A table the models have is not in the schema, and a table no model describes has
    /// exactly its columns (names, types, nullability, defaults, identity): most likely
    /// renamed (the catalog cannot tell a rename from drop and create). The differences
    /// listed after it for `expected` compare the model with the table as the rename would
    /// leave it: its constraints and indexes named after the old table (PostgreSQL's default
    /// names, `found_pkey`) renamed after the new one.
    RenamedTable {
        /// The table the models have.
        expected: String,
        /// The table the schema has in its place.
        found: String,
    },
    /// A column the model has is not in the table.
    MissingColumn {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// The table has a column the model does not.
    ExtraColumn {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// One column is missing and one extra column has exactly its type, nullability and
    /// default: most likely renamed (the catalog cannot tell a rename from drop and add).
    RenamedColumn {
        /// The table.
        table: String,
        /// The column the model has.
        expected: String,
        /// The column the table has in its place.
        found: String,
    },
    /// A column has another type.
    TypeMismatch {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// The models' type.
        expected: String,
        /// The live type.
        found: String,
    },
    /// A column is NULL-able where the model says NOT NULL, or the other way round.
    NullabilityMismatch {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// Whether the model allows NULL.
        expected_nullable: bool,
    },
    /// A column has another default (or none, or one where the model has none).
    DefaultMismatch {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// The models' default.
        expected: Option<String>,
        /// The live default.
        found: Option<String>,
    },
    /// A column is an identity column where the model says not, or the other way round.
    IdentityMismatch {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// Whether the model has an identity column.
        expected_identity: bool,
    },
    /// A constraint the model has is not on the table.
    MissingConstraint {
        /// The table.
        table: String,
        /// The constraint name.
        name: String,
        /// What it should be.
        expected: String,
    },
    /// The table has a constraint the model does not.
    ExtraConstraint {
        /// The table.
        table: String,
        /// The constraint name.
        name: String,
        /// Its `pg_get_constraintdef`.
        found: String,
    },
    /// A constraint of that name constrains something else.
    ConstraintMismatch {
        /// The table.
        table: String,
        /// The constraint name.
        name: String,
        /// What it should be.
        expected: String,
        /// What it is.
        found: String,
    },
    /// An index the model has is not on the table.
    MissingIndex {
        /// The table.
        table: String,
        /// The index name.
        name: String,
        /// What it should be.
        expected: String,
    },
    /// The table has an index the model does not.
    ExtraIndex {
        /// The table.
        table: String,
        /// The index name.
        name: String,
        /// Its `pg_get_indexdef`.
        found: String,
    },
    /// An index of that name indexes something else.
    IndexMismatch {
        /// The table.
        table: String,
        /// The index name.
        name: String,
        /// What it should be.
        expected: String,
        /// What it is.
        found: String,
    },
    /// An enum type the models use is not in the schema.
    MissingEnum {
        /// The type.
        name: String,
    },
    /// The schema has an enum type no model uses.
    ExtraEnum {
        /// The type.
        name: String,
    },
    /// An enum type lacks a label.
    MissingEnumLabel {
        /// The type.
        name: String,
        /// The label.
        label: String,
    },
    /// An enum type has a label the Rust enum does not.
    ExtraEnumLabel {
        /// The type.
        name: String,
        /// The label.
        label: String,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Difference::*;
        let null = |n: bool| if n { "NULL-able" } else { "NOT NULL" };
        let default = |d: &Option<String>| match d {
            Some(d) => format!("DEFAULT {d}"),
            None => "no default".to_owned(),
        };
        match self {
            MissingTable { table } => write!(f, "table {table:?} is missing"),
            ExtraTable { table } => write!(f, "table {table:?} exists but no model describes it"),
            RenamedTable { expected, found } => write!(
                f,
                "table {expected:?} is missing but a table {found:?} that no model describes has the same columns: renamed?"
            ),
            MissingColumn { table, column } => {
                write!(f, "table {table:?} has no column {column:?}")
            }
            ExtraColumn { table, column } => write!(
                f,
                "table {table:?} has a column {column:?} that its model does not"
            ),
            RenamedColumn {
                table,
                expected,
                found,
            } => write!(
                f,
                "table {table:?} has no column {expected:?} but an extra column {found:?} of the same type: renamed?"
            ),
            TypeMismatch {
                table,
                column,
                expected,
                found,
            } => write!(
                f,
                "column {table:?}.{column:?} is {found}, the model says {expected}"
            ),
            NullabilityMismatch {
                table,
                column,
                expected_nullable,
            } => write!(
                f,
                "column {table:?}.{column:?} is {}, the model says {}",
                null(!expected_nullable),
                null(*expected_nullable)
            ),
            DefaultMismatch {
                table,
                column,
                expected,
                found,
            } => write!(
                f,
                "column {table:?}.{column:?} has {}, the model says {}",
                default(found),
                default(expected)
            ),
            IdentityMismatch {
                table,
                column,
                expected_identity,
            } => write!(
                f,
                "column {table:?}.{column:?} {} an identity column, the model says it {}",
                if *expected_identity { "is not" } else { "is" },
                if *expected_identity { "is" } else { "is not" }
            ),
            MissingConstraint {
                table,
                name,
                expected,
            } => write!(
                f,
                "table {table:?} has no constraint {name:?} ({expected})"
            ),
            ExtraConstraint { table, name, found } => write!(
                f,
                "table {table:?} has a constraint {name:?} ({found}) that its model does not"
            ),
            ConstraintMismatch {
                table,
                name,
                expected,
                found,
            } => write!(
                f,
                "constraint {name:?} of table {table:?} is {found}, the model says {expected}"
            ),
            MissingIndex {
                table,
                name,
                expected,
            } => write!(f, "table {table:?} has no index {name:?} ({expected})"),
            ExtraIndex { table, name, found } => write!(
                f,
                "table {table:?} has an index {name:?} ({found}) that its model does not"
            ),
            IndexMismatch {
                table,
                name,
                expected,
                found,
            } => write!(
                f,
                "index {name:?} of table {table:?} is {found}, the model says {expected}"
            ),
            MissingEnum { name } => write!(f, "enum type {name:?} is missing"),
            ExtraEnum { name } => write!(f, "enum type {name:?} exists but no model uses it"),
            MissingEnumLabel { name, label } => {
                write!(f, "enum type {name:?} has no label {label:?}")
            }
            ExtraEnumLabel { name, label } => write!(
                f,
                "enum type {name:?} has a label {label:?} that the Rust enum does not"
            ),
        }
    }
}

impl SchemaShape {
    /// How `live` differs from `self` (the expected shape): missing and extra tables,
    /// columns, constraints, indexes, enum types and labels, and columns, constraints and
    /// indexes that differ. Empty when the live schema is what the models create. Column
    /// order is not compared; constraint and index definitions are compared by kind, columns
    /// and target, not by text. Sorted by table, then kind of object. A missing table and
    /// an extra one with the same columns are one [`Difference::RenamedTable`] (and a
    /// missing column and an extra one of the same type one [`Difference::RenamedColumn`]).
    ///
    /// ```
    /// use tenant_runtime::model::{Difference, SchemaShape};
    ///
    /// let expected = SchemaShape::default();
    /// assert!(expected.diff(&SchemaShape::default()).is_empty());
    /// ```
    pub fn diff(&self, live: &SchemaShape) -> Vec<Difference> {
        let renamed = renamed_tables(self, live);
        // The rest is compared with the schema as the renames would leave it.
        let after = after_renames(self, live, &renamed).0;
        let live = &after;
        let mut out = Vec::new();
        for (name, labels) in &self.enums {
            match live.enums.get(name) {
                None => out.push(Difference::MissingEnum { name: name.clone() }),
                Some(found) => {
                    for label in labels.iter().filter(|l| !found.contains(l)) {
                        out.push(Difference::MissingEnumLabel {
                            name: name.clone(),
                            label: label.clone(),
                        });
                    }
                    for label in found.iter().filter(|l| !labels.contains(l)) {
                        out.push(Difference::ExtraEnumLabel {
                            name: name.clone(),
                            label: label.clone(),
                        });
                    }
                }
            }
        }
        for name in live.enums.keys().filter(|n| !self.enums.contains_key(*n)) {
            out.push(Difference::ExtraEnum { name: name.clone() });
        }
        let tables: BTreeSet<&String> = self.tables.keys().chain(live.tables.keys()).collect();
        for table in tables {
            match (self.tables.get(table), live.tables.get(table)) {
                (Some(_), None) => out.push(Difference::MissingTable {
                    table: table.clone(),
                }),
                (Some(e), Some(l)) => {
                    if let Some((_, found)) = renamed.iter().find(|(n, _)| n == table) {
                        out.push(Difference::RenamedTable {
                            expected: table.clone(),
                            found: found.clone(),
                        });
                    }
                    diff_table(table, e, l, &mut out);
                }
                (None, Some(_)) => out.push(Difference::ExtraTable {
                    table: table.clone(),
                }),
                (None, None) => unreachable!("the name came from one of the two"),
            }
        }
        out
    }
}

/// The pairs `(expected, found)` of a table the models have that `live` lacks and a table of
/// `live` no model describes with the same columns (in any order), each table in one pair
/// at most: a table that matches two others is left to drop and create.
pub(crate) fn renamed_tables(expected: &SchemaShape, live: &SchemaShape) -> Vec<(String, String)> {
    let missing: Vec<(&String, &TableShape)> = expected
        .tables
        .iter()
        .filter(|(name, _)| !live.tables.contains_key(*name))
        .collect();
    let extra: Vec<(&String, &TableShape)> = live
        .tables
        .iter()
        .filter(|(name, _)| !expected.tables.contains_key(*name))
        .collect();
    let same_columns = |a: &TableShape, b: &TableShape| {
        !a.columns.is_empty()
            && a.columns.len() == b.columns.len()
            && a.columns.iter().all(|c| {
                b.column(&c.name)
                    .is_some_and(|other| same_but_name(c, other))
            })
    };
    let mut pairs = Vec::new();
    for (name, e) in &missing {
        let candidates: Vec<&String> = extra
            .iter()
            .filter(|(_, l)| same_columns(e, l))
            .map(|(found, _)| *found)
            .collect();
        let [found] = candidates[..] else { continue };
        let claimed = missing
            .iter()
            .filter(|(_, other)| same_columns(other, live.tables.get(found).expect("extra")))
            .count();
        if claimed == 1 {
            pairs.push(((*name).clone(), found.clone()));
        }
    }
    pairs
}

/// A constraint or index that renaming its table renames too, so the table's names follow
/// the new table's (`invoices_pkey` to `bills_pkey`): PostgreSQL's default names start with
/// the table's name, and a rename keeps them as they were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RenamedObject {
    /// The table, by its new name.
    pub(crate) table: String,
    /// An index (else a constraint).
    pub(crate) index: bool,
    /// Its name now.
    pub(crate) old: String,
    /// The name the model gives it.
    pub(crate) new: String,
}

/// `live` as it will be once each `(expected, found)` pair of [`renamed_tables`] is renamed:
/// `found` under the name `expected`, the foreign keys of every table into it pointing at
/// the new name, and its constraints and indexes whose names start with `found` renamed when
/// the model has the name with `expected` instead, and it constrains or indexes the same
/// (listed, for the statements that do it).
pub(crate) fn after_renames(
    expected: &SchemaShape,
    live: &SchemaShape,
    pairs: &[(String, String)],
) -> (SchemaShape, Vec<RenamedObject>) {
    let mut out = live.clone();
    let mut objects = Vec::new();
    for (new, old) in pairs {
        let Some(mut table) = out.tables.remove(old) else {
            continue;
        };
        let model = &expected.tables[new];
        let (constraint_names, index_names): (Vec<String>, Vec<String>) = (
            table.constraints.keys().cloned().collect(),
            table.indexes.keys().cloned().collect(),
        );
        for (name, c) in std::mem::take(&mut table.constraints) {
            let renamed = name
                .strip_prefix(old.as_str())
                .map(|rest| format!("{new}{rest}"))
                .filter(|n| {
                    !constraint_names.contains(n)
                        && model.constraints.get(n).is_some_and(|m| {
                            // Its own foreign key into itself points at the old name yet.
                            let mut c = c.clone();
                            if let Some(r) = c.references.as_mut().filter(|r| &r.table == old) {
                                r.table = new.clone();
                            }
                            same_constraint(m, &c)
                        })
                });
            match renamed {
                Some(n) => {
                    objects.push(RenamedObject {
                        table: new.clone(),
                        index: false,
                        old: name,
                        new: n.clone(),
                    });
                    table.constraints.insert(n, c);
                }
                None => {
                    table.constraints.insert(name, c);
                }
            }
        }
        for (name, i) in std::mem::take(&mut table.indexes) {
            let renamed = name
                .strip_prefix(old.as_str())
                .map(|rest| format!("{new}{rest}"))
                .filter(|n| {
                    !index_names.contains(n)
                        && model.indexes.get(n).is_some_and(|m| same_index(m, &i))
                });
            match renamed {
                Some(n) => {
                    objects.push(RenamedObject {
                        table: new.clone(),
                        index: true,
                        old: name,
                        new: n.clone(),
                    });
                    table.indexes.insert(n, i);
                }
                None => {
                    table.indexes.insert(name, i);
                }
            }
        }
        out.tables.insert(new.clone(), table);
        for t in out.tables.values_mut() {
            for c in t.constraints.values_mut() {
                if let Some(r) = c.references.as_mut() {
                    if r.schema == live.schema && &r.table == old {
                        r.table = new.clone();
                    }
                }
            }
        }
    }
    (out, objects)
}

fn same_but_name(a: &ColumnShape, b: &ColumnShape) -> bool {
    a.sql_type == b.sql_type
        && a.nullable == b.nullable
        && a.default == b.default
        && a.identity == b.identity
}

fn diff_table(table: &str, e: &TableShape, l: &TableShape, out: &mut Vec<Difference>) {
    let t = || table.to_owned();
    let missing: Vec<&ColumnShape> = e
        .columns
        .iter()
        .filter(|c| l.column(&c.name).is_none())
        .collect();
    let extra: Vec<&ColumnShape> = l
        .columns
        .iter()
        .filter(|c| e.column(&c.name).is_none())
        .collect();
    if let ([m], [x]) = (missing.as_slice(), extra.as_slice()) {
        if same_but_name(m, x) {
            out.push(Difference::RenamedColumn {
                table: t(),
                expected: m.name.clone(),
                found: x.name.clone(),
            });
        } else {
            out.push(Difference::MissingColumn {
                table: t(),
                column: m.name.clone(),
            });
            out.push(Difference::ExtraColumn {
                table: t(),
                column: x.name.clone(),
            });
        }
    } else {
        for m in missing {
            out.push(Difference::MissingColumn {
                table: t(),
                column: m.name.clone(),
            });
        }
        for x in extra {
            out.push(Difference::ExtraColumn {
                table: t(),
                column: x.name.clone(),
            });
        }
    }
    for c in &e.columns {
        let Some(found) = l.column(&c.name) else {
            continue;
        };
        let column = || c.name.clone();
        if c.sql_type != found.sql_type {
            out.push(Difference::TypeMismatch {
                table: t(),
                column: column(),
                expected: c.sql_type.clone(),
                found: found.sql_type.clone(),
            });
        }
        if c.nullable != found.nullable {
            out.push(Difference::NullabilityMismatch {
                table: t(),
                column: column(),
                expected_nullable: c.nullable,
            });
        }
        if c.identity != found.identity {
            out.push(Difference::IdentityMismatch {
                table: t(),
                column: column(),
                expected_identity: c.identity,
            });
        }
        if c.default != found.default {
            out.push(Difference::DefaultMismatch {
                table: t(),
                column: column(),
                expected: c.default.clone(),
                found: found.default.clone(),
            });
        }
    }
    for (name, c) in &e.constraints {
        match l.constraints.get(name) {
            None => out.push(Difference::MissingConstraint {
                table: t(),
                name: name.clone(),
                expected: c.describe(),
            }),
            Some(found) if !same_constraint(c, found) => out.push(Difference::ConstraintMismatch {
                table: t(),
                name: name.clone(),
                expected: c.describe(),
                found: found.describe(),
            }),
            Some(_) => {}
        }
    }
    for (name, c) in &l.constraints {
        if !e.constraints.contains_key(name) {
            out.push(Difference::ExtraConstraint {
                table: t(),
                name: name.clone(),
                found: c.describe(),
            });
        }
    }
    for (name, i) in &e.indexes {
        match l.indexes.get(name) {
            None => out.push(Difference::MissingIndex {
                table: t(),
                name: name.clone(),
                expected: i.describe(),
            }),
            Some(found) if !same_index(i, found) => out.push(Difference::IndexMismatch {
                table: t(),
                name: name.clone(),
                expected: i.describe(),
                found: found.describe(),
            }),
            Some(_) => {}
        }
    }
    for (name, i) in &l.indexes {
        if !e.indexes.contains_key(name) {
            out.push(Difference::ExtraIndex {
                table: t(),
                name: name.clone(),
                found: i.describe(),
            });
        }
    }
}
