//! SQL templates with schema slots, and the maps that fill them.
//!
//! A [`Template`] is literal SQL with [`Slot`]s between the pieces. Nothing but a
//! [`SchemaName`] (for named slots, from a [`SchemaMap`]) or a [`Tenant`](crate::Tenant)'s
//! schema (for the tenant slot) is ever written into a slot, and it is always written
//! double-quoted. Rendering is concatenation; no string is parsed at run time.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use smallvec::SmallVec;

use super::TemplateBuilder;
use crate::door::{validate_identifier, SchemaName};
use crate::error::InvalidSchemaName;

/// Where a table lives: the tenant's schema, or a named schema slot mapped by a
/// [`SchemaMap`] (SQLAlchemy's `schema_translate_map` keys).
///
/// ```
/// use tenant_runtime::Slot;
/// assert_eq!(Slot::Named("shared").to_string(), "{shared}");
/// assert_eq!(Slot::Tenant.to_string(), "{tenant}");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// The schema of the tenant the statement runs for.
    Tenant,
    /// A named slot: filled from the [`SchemaMap`], or by the schema of the same name if no
    /// map level maps it.
    Named(&'static str),
}

impl Slot {
    /// The name of a named slot; `None` for the tenant slot.
    ///
    /// ```
    /// use tenant_runtime::Slot;
    /// assert_eq!(Slot::Named("shared").name(), Some("shared"));
    /// assert_eq!(Slot::Tenant.name(), None);
    /// ```
    pub fn name(self) -> Option<&'static str> {
        match self {
            Slot::Tenant => None,
            Slot::Named(name) => Some(name),
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Slot::Tenant => f.write_str("{tenant}"),
            Slot::Named(n) => write!(f, "{{{n}}}"),
        }
    }
}

/// One piece of a [`Template`]: literal SQL, or a schema slot.
///
/// ```
/// use std::borrow::Cow;
/// use tenant_runtime::sql::{Piece, Template};
/// use tenant_runtime::Slot;
///
/// static PIECES: [Piece; 3] = [
///     Piece::Sql(Cow::Borrowed("SELECT count(*) FROM ")),
///     Piece::Schema(Slot::Tenant),
///     Piece::Sql(Cow::Borrowed(".\"invoices\"")),
/// ];
/// let template = Template::from_static(&PIECES);
/// assert_eq!(template.pieces().len(), 3);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Piece {
    /// Literal SQL text, written as is.
    Sql(Cow<'static, str>),
    /// A schema slot, written as a quoted schema name.
    Schema(Slot),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum TemplateKey {
    /// A template made of `'static` pieces: keyed by their address.
    Static(usize, usize),
    /// A template built at run time: keyed by its content.
    Dynamic(Arc<str>),
    /// A template built at run time and kept in a process-wide cache of statement shapes
    /// (the query builder's): keyed by a number given once per built template, so a cache
    /// lookup hashes one word instead of the SQL text.
    Shape(u64),
}

/// The next [`TemplateKey::Shape`] number; each is given to one template only.
static NEXT_SHAPE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// SQL with schema slots: the unit the runtime renders, prepares and caches.
///
/// Templates come from `#[derive(Model)]`, the query macros, the query builder and the DDL
/// generator; they are rendered once per (template, schemas) and cached per connection.
/// Build one by hand with [`Template::builder`].
///
/// ```
/// use tenant_runtime::sql::Template;
/// use tenant_runtime::{SchemaMap, SchemaName, Slot};
///
/// let t = Template::builder().sql("SELECT * FROM ").table(Slot::Named("shared"), "plans").build();
/// let map = SchemaMap::new().with("shared", "public")?;
/// let sql = t.render(|slot| match slot {
///     Slot::Named(name) => map.get(name).unwrap_or(SchemaName::parse(name).unwrap()),
///     Slot::Tenant => unreachable!(),
/// });
/// assert_eq!(sql, r#"SELECT * FROM "public"."plans""#);
/// # Ok::<(), tenant_runtime::error::InvalidSchemaName>(())
/// ```
#[derive(Clone)]
pub struct Template {
    pieces: Cow<'static, [Piece]>,
    key: TemplateKey,
}

impl Template {
    /// A template over `'static` pieces (what the macros emit). Cheap: no allocation.
    #[doc(hidden)]
    pub const fn from_static(pieces: &'static [Piece]) -> Template {
        Template {
            pieces: Cow::Borrowed(pieces),
            // Filled lazily from the address in `key()`; see there.
            key: TemplateKey::Static(0, 0),
        }
    }

    /// A builder for a template assembled at run time (see [`TemplateBuilder`]).
    pub fn builder() -> TemplateBuilder {
        TemplateBuilder::new()
    }

    /// A template built at run time. Its cache key is its content.
    pub(crate) fn new(pieces: Vec<Piece>) -> Template {
        let mut canon = String::new();
        for p in &pieces {
            match p {
                Piece::Sql(s) => canon.push_str(s),
                // NUL cannot occur in PostgreSQL query text, so it cannot collide with SQL.
                Piece::Schema(Slot::Tenant) => canon.push_str("\0tenant\0"),
                Piece::Schema(Slot::Named(n)) => {
                    canon.push_str("\0slot:");
                    canon.push_str(n);
                    canon.push('\0');
                }
            }
        }
        Template {
            pieces: Cow::Owned(pieces),
            key: TemplateKey::Dynamic(canon.into()),
        }
    }

    /// A template built at run time whose cache key is a number of its own instead of its
    /// content: for templates kept (and shared) in a process-wide cache of shapes, where the
    /// same shape always comes back as this very template.
    pub(crate) fn new_shape(pieces: Vec<Piece>) -> Template {
        let id = NEXT_SHAPE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Template {
            pieces: Cow::Owned(pieces),
            key: TemplateKey::Shape(id),
        }
    }

    /// The pieces, in order.
    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    pub(crate) fn key(&self) -> TemplateKey {
        match (&self.pieces, &self.key) {
            (Cow::Borrowed(p), TemplateKey::Static(..)) => {
                TemplateKey::Static(p.as_ptr() as usize, p.len())
            }
            (_, k) => k.clone(),
        }
    }

    /// The slots this template uses, in order of appearance (with repeats).
    pub fn slots(&self) -> impl Iterator<Item = Slot> + '_ {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Schema(s) => Some(*s),
            Piece::Sql(_) => None,
        })
    }

    /// Renders the SQL text, filling each slot with the quoted schema `fill` gives for it.
    pub fn render(&self, mut fill: impl FnMut(Slot) -> SchemaName) -> String {
        let len: usize = self
            .pieces
            .iter()
            .map(|p| match p {
                Piece::Sql(s) => s.len(),
                Piece::Schema(_) => 66,
            })
            .sum();
        let mut out = String::with_capacity(len);
        for p in self.pieces.iter() {
            match p {
                Piece::Sql(s) => out.push_str(s),
                Piece::Schema(slot) => fill(*slot).push_quoted(&mut out),
            }
        }
        out
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Template").field(&self.to_string()).finish()
    }
}

/// Shows the SQL with each slot as `{tenant}` or `{name}`.
///
/// ```
/// # use tenant_runtime::{sql::Template, Slot};
/// let t = Template::builder().sql("TABLE ").table(Slot::Tenant, "t").build();
/// assert_eq!(t.to_string(), r#"TABLE {tenant}."t""#);
/// ```
impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in self.pieces.iter() {
            match p {
                Piece::Sql(t) => f.write_str(t)?,
                Piece::Schema(slot) => write!(f, "{slot}")?,
            }
        }
        Ok(())
    }
}

/// Maps named schema slots to schemas: SQLAlchemy's `schema_translate_map`.
///
/// Maps apply at three levels, narrowest wins: the connection (or pool) default, one
/// [`Db`](crate::Db) handle, one statement. A named slot that no level maps is filled by the
/// schema of the same name. The tenant slot is never in a map: only a
/// [`Tenant`](crate::Tenant) fills it.
///
/// ```
/// use tenant_runtime::SchemaMap;
/// let map = SchemaMap::new().with("shared", "public")?.with("audit", "audit_2026")?;
/// assert_eq!(map.get("shared").unwrap().as_str(), "public");
/// assert!(map.get("billing").is_none());
/// # Ok::<(), tenant_runtime::error::InvalidSchemaName>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SchemaMap {
    entries: SmallVec<[(SchemaName, SchemaName); 2]>,
}

impl SchemaMap {
    /// An empty map.
    pub fn new() -> SchemaMap {
        SchemaMap::default()
    }

    /// Maps `slot` to `schema` (replacing an earlier mapping of `slot`). Both must satisfy
    /// the identifier rule of [`SchemaName`].
    ///
    /// ```
    /// # use tenant_runtime::SchemaMap;
    /// assert!(SchemaMap::new().with("shared", "Public").is_err());
    /// ```
    pub fn with(mut self, slot: &str, schema: &str) -> Result<SchemaMap, InvalidSchemaName> {
        validate_identifier(slot)?;
        let slot = SchemaName::parse(slot)?;
        let schema = SchemaName::parse(schema)?;
        self.entries.retain(|(s, _)| *s != slot);
        self.entries.push((slot, schema));
        Ok(self)
    }

    /// The schema `slot` maps to at this level, if any.
    pub fn get(&self, slot: &str) -> Option<SchemaName> {
        self.entries
            .iter()
            .find(|(s, _)| s.as_str() == slot)
            .map(|(_, schema)| *schema)
    }

    /// Whether nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `(slot, schema)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (SchemaName, SchemaName)> + '_ {
        self.entries.iter().copied()
    }
}

impl fmt::Debug for SchemaMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .finish()
    }
}

/// Fills a named slot that no map level mapped: by the schema of the same name. Slot names
/// are validated by the derive, so this only fails for a hand-built invalid slot.
pub(crate) fn default_for_slot(name: &str) -> Result<SchemaName, InvalidSchemaName> {
    SchemaName::parse(name)
}
