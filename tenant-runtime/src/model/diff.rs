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
    /// and target, not by text. Sorted by table, then kind of object.
    ///
    /// ```
    /// use tenant_runtime::model::{Difference, SchemaShape};
    ///
    /// let expected = SchemaShape::default();
    /// assert!(expected.diff(&SchemaShape::default()).is_empty());
    /// ```
    pub fn diff(&self, live: &SchemaShape) -> Vec<Difference> {
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
                (None, Some(_)) => out.push(Difference::ExtraTable {
                    table: table.clone(),
                }),
                (Some(e), Some(l)) => diff_table(table, e, l, &mut out),
                (None, None) => unreachable!("the name came from one of the two"),
            }
        }
        out
    }
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
