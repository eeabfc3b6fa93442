//! Typed filters and orderings over a model's generated columns, for the query builder.
//!
//! A [`Column<M, T>`](crate::Column) (e.g. `Invoice::PAID: Column<Invoice, bool>`) makes
//! [`Filter`]s (`Invoice::PAID.eq(false)`) and [`Order`]s (`Invoice::ID.desc()`) for model
//! `M` only, and takes only values that [`Bind`] as a `T`, so a wrong column or value type
//! does not compile. Values always become bind parameters (`$n`), never SQL text.

use std::fmt::Write as _;
use std::marker::PhantomData;

use postgres_types::ToSql;

use super::Params;
use crate::sql::{Template, TemplateBuilder};

/// A value that can be bound as a parameter for a column of Rust type `T`.
///
/// Implemented for `T` itself and `&T`; for `Option<T>` columns also for `T` and `&T` (a
/// present value); and for `&str` where the column is a `String` (or `Option<String>`),
/// `&[u8]` where it is a `Vec<u8>`. Nothing else: a `&str` is not a value for a `bool`
/// column.
///
/// ```
/// use tenant_runtime::Model;
///
/// #[derive(Model)]
/// #[tenant(table = "notes")]
/// struct Note { #[tenant(primary_key)] id: i64, body: String, tag: Option<String> }
///
/// let _ = Note::ID.eq(7);                 // i64
/// let _ = Note::BODY.eq("hello");         // &str for a String column
/// let _ = Note::TAG.eq("urgent");         // a present value for an Option<String> column
/// let _ = Note::TAG.eq(None);             // binds NULL (`= NULL` is never true: see `is_null`)
/// ```
///
/// ```compile_fail
/// # use tenant_runtime::Model;
/// # #[derive(Model)] #[tenant(table = "notes")] struct Note { #[tenant(primary_key)] id: i64 }
/// let _ = Note::ID.eq("7"); // a `&str` is not a value for an `i64` column
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a value for a column of type `{T}`",
    label = "expected a value of type `{T}` (or a reference to one)",
    note = "a column of type `{T}` takes a `{T}` or a `&{T}`; an `Option<U>` column also takes a `U` or a `&U`; `String` and `Vec<u8>` columns also take a `&str` and a `&[u8]`"
)]
pub trait Bind<T> {}

impl<T> Bind<T> for T {}
impl<T> Bind<T> for &T {}
impl<T> Bind<Option<T>> for T {}
impl<T> Bind<Option<T>> for &T {}
impl Bind<String> for &str {}
impl Bind<Option<String>> for &str {}
impl Bind<Vec<u8>> for &[u8] {}
impl Bind<Option<Vec<u8>>> for &[u8] {}

/// An owned bind parameter of a builder statement.
pub(crate) type Value<'a> = Box<dyn ToSql + Sync + Send + 'a>;

/// A boolean condition on the rows of model `M`, made from its typed columns and combined
/// with [`and`](Filter::and), [`or`](Filter::or) and [`not`](Filter::not).
///
/// ```
/// use tenant_runtime::Model;
///
/// #[derive(Model)]
/// #[tenant(table = "invoices")]
/// struct Invoice { #[tenant(primary_key)] id: i64, amount_cents: i64, paid: bool, note: Option<String> }
///
/// let unpaid_big = Invoice::PAID.eq(false).and(Invoice::AMOUNT_CENTS.ge(10_000));
/// let f = unpaid_big.or(Invoice::NOTE.like("%urgent%")).not();
/// assert_eq!(
///     f.to_string(),
///     r#"NOT ((("paid" = $1 AND "amount_cents" >= $2) OR "note" LIKE $3))"#
/// );
/// ```
pub struct Filter<'a, M> {
    node: Node<'a>,
    _model: PhantomData<fn() -> M>,
}

pub(crate) enum Node<'a> {
    Compare {
        column: &'static str,
        op: &'static str,
        value: Value<'a>,
    },
    Null {
        column: &'static str,
        negated: bool,
    },
    /// `column = ANY($n)` with one array parameter: one statement shape for any list length.
    AnyOf {
        column: &'static str,
        values: Value<'a>,
    },
    And(Vec<Node<'a>>),
    Or(Vec<Node<'a>>),
    Not(Box<Node<'a>>),
}

impl<'a> Node<'a> {
    /// Writes the condition, numbering parameters after those already in `params`.
    pub(crate) fn write<'s>(&'s self, sql: &mut TemplateBuilder, params: &mut Params<'s>) {
        match self {
            Node::Compare { column, op, value } => {
                params.push(&**value);
                sql.ident(column);
                let _ = write!(sql, " {op} ${}", params.len());
            }
            Node::Null { column, negated } => {
                sql.ident(column)
                    .sql(if *negated { " IS NOT NULL" } else { " IS NULL" });
            }
            Node::AnyOf { column, values } => {
                params.push(&**values);
                sql.ident(column);
                let _ = write!(sql, " = ANY(${})", params.len());
            }
            Node::And(nodes) | Node::Or(nodes) => {
                let sep = if matches!(self, Node::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                sql.sql("(");
                for (i, node) in nodes.iter().enumerate() {
                    if i > 0 {
                        sql.sql(sep);
                    }
                    node.write(sql, params);
                }
                sql.sql(")");
            }
            Node::Not(node) => {
                sql.sql("NOT (");
                node.write(sql, params);
                sql.sql(")");
            }
        }
    }
}

impl Node<'_> {
    /// Pushes the parameters [`write`](Node::write) numbers, in the same order, without
    /// writing SQL: for a statement whose template came from the cache of shapes.
    pub(crate) fn bind<'s>(&'s self, params: &mut Params<'s>) {
        match self {
            Node::Compare { value, .. } | Node::AnyOf { values: value, .. } => {
                params.push(&**value)
            }
            Node::Null { .. } => {}
            Node::And(nodes) | Node::Or(nodes) => nodes.iter().for_each(|n| n.bind(params)),
            Node::Not(node) => node.bind(params),
        }
    }

    /// Appends to `key` everything that decides the SQL [`write`](Node::write) produces
    /// (never the values).
    pub(crate) fn shape(&self, key: &mut super::builder::ShapeKey) {
        match self {
            Node::Compare { column, op, .. } => {
                key.push(1);
                key.push_str(column);
                key.push_str(op);
            }
            Node::Null { column, negated } => {
                key.push(if *negated { 3 } else { 2 });
                key.push_str(column);
            }
            Node::AnyOf { column, .. } => {
                key.push(4);
                key.push_str(column);
            }
            Node::And(nodes) | Node::Or(nodes) => {
                key.push(if matches!(self, Node::And(_)) { 5 } else { 6 });
                key.push(nodes.len());
                nodes.iter().for_each(|n| n.shape(key));
            }
            Node::Not(node) => {
                key.push(7);
                node.shape(key);
            }
        }
    }
}

impl<'a, M> Filter<'a, M> {
    pub(super) fn new(node: Node<'a>) -> Self {
        Filter {
            node,
            _model: PhantomData,
        }
    }

    pub(crate) fn into_node(self) -> Node<'a> {
        self.node
    }

    /// Both conditions.
    ///
    /// ```
    /// # use tenant_runtime::Model;
    /// # #[derive(Model)] #[tenant(table = "t")] struct T { #[tenant(primary_key)] id: i64, n: i32 }
    /// assert_eq!(T::N.gt(1).and(T::N.lt(9)).to_string(), r#"("n" > $1 AND "n" < $2)"#);
    /// ```
    pub fn and(self, other: Filter<'a, M>) -> Filter<'a, M> {
        Filter::new(match self.node {
            Node::And(mut nodes) => {
                nodes.push(other.node);
                Node::And(nodes)
            }
            node => Node::And(vec![node, other.node]),
        })
    }

    /// Either condition.
    ///
    /// ```
    /// # use tenant_runtime::Model;
    /// # #[derive(Model)] #[tenant(table = "t")] struct T { #[tenant(primary_key)] id: i64, n: i32 }
    /// assert_eq!(T::N.eq(1).or(T::N.eq(9)).to_string(), r#"("n" = $1 OR "n" = $2)"#);
    /// ```
    pub fn or(self, other: Filter<'a, M>) -> Filter<'a, M> {
        Filter::new(match self.node {
            Node::Or(mut nodes) => {
                nodes.push(other.node);
                Node::Or(nodes)
            }
            node => Node::Or(vec![node, other.node]),
        })
    }

    /// The negated condition (SQL `NOT`: a row where the condition is NULL matches neither
    /// the condition nor its negation).
    ///
    /// ```
    /// # use tenant_runtime::Model;
    /// # #[derive(Model)] #[tenant(table = "t")] struct T { #[tenant(primary_key)] id: i64, n: i32 }
    /// assert_eq!(T::N.eq(1).not().to_string(), r#"NOT ("n" = $1)"#);
    /// ```
    #[allow(clippy::should_implement_trait)] // also implemented: `!filter`
    pub fn not(self) -> Filter<'a, M> {
        Filter::new(Node::Not(Box::new(self.node)))
    }
}

impl<'a, M> std::ops::Not for Filter<'a, M> {
    type Output = Filter<'a, M>;
    fn not(self) -> Filter<'a, M> {
        Filter::not(self)
    }
}

/// Shows the condition as SQL, with parameters numbered from `$1`.
impl<M> std::fmt::Display for Filter<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut sql = Template::builder();
        self.node.write(&mut sql, &mut Params::new());
        write!(f, "{}", sql.build())
    }
}

impl<M> std::fmt::Debug for Filter<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Filter").field(&self.to_string()).finish()
    }
}

/// An `ORDER BY` term on a column of model `M`: [`Column::asc`](crate::Column::asc) or
/// [`Column::desc`](crate::Column::desc).
///
/// ```
/// # use tenant_runtime::Model;
/// # #[derive(Model)] #[tenant(table = "t")] struct T { #[tenant(primary_key)] id: i64 }
/// assert_eq!(T::ID.desc().to_string(), r#""id" DESC"#);
/// ```
pub struct Order<M> {
    pub(crate) column: &'static str,
    pub(crate) descending: bool,
    pub(super) _model: PhantomData<fn() -> M>,
}

impl<M> Clone for Order<M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M> Copy for Order<M> {}

impl<M> std::fmt::Display for Order<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dir = if self.descending { "DESC" } else { "ASC" };
        write!(f, "\"{}\" {dir}", self.column)
    }
}

impl<M> std::fmt::Debug for Order<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Order({self})")
    }
}
