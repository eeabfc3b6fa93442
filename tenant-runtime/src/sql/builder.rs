//! The one way the runtime puts a [`Template`] together at run time.

use std::borrow::Cow;
use std::fmt;

use super::template::{Piece, Slot, Template};

/// Builds a [`Template`] left to right: SQL text, quoted identifiers and schema slots.
///
/// Text that follows text is kept in one piece, so a template reads the same however it was
/// assembled. The DDL generator, the query builder, bulk loads, model sets and migrations all
/// build their templates with it. It also implements [`fmt::Write`], so `write!` appends text.
///
/// ```
/// use tenant_runtime::sql::Template;
/// use tenant_runtime::Slot;
///
/// let t = Template::builder()
///     .sql("SELECT count(*) FROM ")
///     .table(Slot::Tenant, "invoices")
///     .sql(" JOIN ")
///     .table(Slot::Named("shared"), "plans")
///     .sql(" USING (")
///     .ident("plan_code")
///     .sql(")")
///     .build();
/// assert_eq!(
///     t.to_string(),
///     r#"SELECT count(*) FROM {tenant}."invoices" JOIN {shared}."plans" USING ("plan_code")"#
/// );
/// ```
#[derive(Debug, Default)]
pub struct TemplateBuilder {
    pieces: Vec<Piece>,
    sql: String,
}

impl TemplateBuilder {
    /// An empty builder (also [`Template::builder`]).
    pub fn new() -> TemplateBuilder {
        TemplateBuilder::default()
    }

    /// Reserves room for `additional` more bytes of SQL text (bulk statements run to
    /// hundreds of kilobytes).
    pub fn reserve(&mut self, additional: usize) -> &mut TemplateBuilder {
        self.sql.reserve(additional);
        self
    }

    /// Appends SQL text as is.
    pub fn sql(&mut self, text: &str) -> &mut TemplateBuilder {
        self.sql.push_str(text);
        self
    }

    /// Appends `name` as a double-quoted identifier (a `"` inside is doubled).
    ///
    /// ```
    /// # use tenant_runtime::sql::Template;
    /// assert_eq!(Template::builder().ident("amount_cents").build().to_string(), r#""amount_cents""#);
    /// ```
    pub fn ident(&mut self, name: &str) -> &mut TemplateBuilder {
        self.sql.push('"');
        for c in name.chars() {
            if c == '"' {
                self.sql.push('"');
            }
            self.sql.push(c);
        }
        self.sql.push('"');
        self
    }

    /// Appends a schema slot: where the quoted schema goes when the template is rendered.
    pub fn slot(&mut self, slot: Slot) -> &mut TemplateBuilder {
        self.flush();
        self.pieces.push(Piece::Schema(slot));
        self
    }

    /// Appends `{slot}."table"`: a table in a schema slot.
    pub fn table(&mut self, slot: Slot, table: &str) -> &mut TemplateBuilder {
        self.slot(slot).sql(".").ident(table)
    }

    /// Appends every piece of `template`.
    pub fn append(&mut self, template: &Template) -> &mut TemplateBuilder {
        for piece in template.pieces() {
            match piece {
                Piece::Sql(text) => self.sql(text),
                Piece::Schema(slot) => self.slot(*slot),
            };
        }
        self
    }

    /// Whether nothing was appended yet.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty() && self.sql.is_empty()
    }

    /// The template built so far; the builder is left empty. Its cache key is its content, so
    /// equal templates share one prepared statement per connection wherever they were built.
    pub fn build(&mut self) -> Template {
        self.flush();
        Template::new(std::mem::take(&mut self.pieces))
    }

    /// Like [`build`](Self::build), with a cache key of its own instead of the content
    /// (see `Template::new_shape`): for templates kept in a cache of shapes.
    pub(crate) fn build_shape(&mut self) -> Template {
        self.flush();
        Template::new_shape(std::mem::take(&mut self.pieces))
    }

    fn flush(&mut self) {
        if !self.sql.is_empty() {
            let text = std::mem::take(&mut self.sql);
            self.pieces.push(Piece::Sql(Cow::Owned(text)));
        }
    }
}

/// Appends formatted SQL text: `write!(builder, " LIMIT ${n}")`.
impl fmt::Write for TemplateBuilder {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.sql.push_str(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_after_text_is_one_piece() {
        let t = Template::builder()
            .sql("a")
            .sql("b")
            .slot(Slot::Tenant)
            .sql("c")
            .build();
        assert_eq!(
            t.pieces(),
            [
                Piece::Sql(Cow::Borrowed("ab")),
                Piece::Schema(Slot::Tenant),
                Piece::Sql(Cow::Borrowed("c")),
            ]
        );
    }

    #[test]
    fn appended_templates_merge_with_the_text_around_them() {
        let inner = Template::builder()
            .sql("x")
            .table(Slot::Tenant, "t")
            .build();
        let t = Template::builder().sql("(").append(&inner).sql(")").build();
        assert_eq!(t.to_string(), r#"(x{tenant}."t")"#);
        assert_eq!(t.pieces().len(), 3);
    }

    #[test]
    fn quotes_inside_identifiers_are_doubled() {
        let t = Template::builder().ident(r#"a"b"#).build();
        assert_eq!(t.to_string(), r#""a""b""#);
    }

    #[test]
    fn an_empty_builder_builds_an_empty_template() {
        assert!(Template::builder().build().pieces().is_empty());
    }
}
