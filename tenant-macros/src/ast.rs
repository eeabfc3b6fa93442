//! The model as the derive sees it, with the original syn nodes kept for spans.

use syn::{Data, DeriveInput, Fields, Ident, LitStr, Path, Type};

use crate::attr::{self, for_each_tenant_meta, parse_crate, parse_lit_str, parse_path, Attr, Flag};
use crate::ctxt::Ctxt;
use crate::ident::snake;
use crate::schema::{self, Action, Constraint, IdentityOptions, Index};

pub struct Container<'a> {
    pub ident: &'a Ident,
    pub table: String,
    /// The table attribute's literal (for spans); `None` when defaulted.
    pub table_lit: Option<LitStr>,
    /// `None`: the tenant slot.
    pub slot: Option<LitStr>,
    /// `crate = path`; `None`: `::tenant_runtime`.
    pub krate: Option<Path>,
    /// `None` when the input is no struct with named fields (an enum, a tuple struct).
    pub fields: Option<Vec<Field<'a>>>,
    /// A generic struct (an error): its fields are checked, but only a stub impl is
    /// generated.
    pub generic: bool,
    /// Container-level `unique(..)`, `check`, `foreign_key(..)`, in attribute order.
    pub constraints: Vec<Constraint>,
    /// Container-level `index(..)`, in attribute order.
    pub indexes: Vec<Index>,
    /// `primary_key_name = "..."`.
    pub primary_key_name: Option<LitStr>,
}

pub struct Field<'a> {
    pub ident: &'a Ident,
    pub ty: &'a Type,
    /// Column name (field name without `r#`, or `rename`).
    pub column: String,
    pub rename: Option<LitStr>,
    pub primary_key: Flag,
    pub identity: Flag,
    pub unique: bool,
    /// `unique(name = "...")`.
    pub unique_name: Option<LitStr>,
    pub index: bool,
    /// The field-level `index` with its options.
    pub index_def: Option<Index>,
    pub default: Option<LitStr>,
    pub references: Option<Path>,
    pub on_delete: Option<(proc_macro2::TokenStream, Action)>,
    pub on_update: Option<(proc_macro2::TokenStream, Action)>,
    pub foreign_key_name: Option<(proc_macro2::TokenStream, LitStr)>,
    /// Field-level `check`.
    pub check: Option<Constraint>,
    pub identity_options: IdentityOptions,
    pub sql_type: Option<LitStr>,
}

/// Rust integer types `identity` accepts, by name (their `SqlType`s are in
/// [`tenant_sql::IDENTITY_TYPES`]).
const INTEGER_TYPES: &[&str] = &["i16", "i32", "i64"];
/// Types that are certainly not integers (so `identity` on them is refused at once).
const NON_INTEGER_TYPES: &[&str] = &[
    "String", "str", "bool", "f32", "f64", "Vec", "Option", "u8", "u16", "u32", "u64", "i8",
    "i128", "u128", "usize", "isize",
];

impl Field<'_> {
    fn last_type_name(&self) -> Option<String> {
        match self.ty {
            Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
            Type::Reference(_) => Some("&".into()),
            _ => None,
        }
    }

    /// `identity` on a type that is certainly not an integer column.
    pub fn identity_type_is_wrong(&self) -> bool {
        if let Some(sql_type) = &self.sql_type {
            return !tenant_sql::is_identity_type(&sql_type.value());
        }
        self.last_type_name()
            .is_some_and(|n| n == "&" || NON_INTEGER_TYPES.contains(&n.as_str()))
    }

    /// `identity` on a type the macro cannot judge by name (an alias, a custom type).
    pub fn identity_type_unknown(&self) -> bool {
        self.sql_type.is_none()
            && !self.identity_type_is_wrong()
            && !self
                .last_type_name()
                .is_some_and(|n| INTEGER_TYPES.contains(&n.as_str()))
    }

    /// Whether the field type is written `Option<...>` (used only with `sql_type`, where no
    /// `SqlType` implementation is there to say).
    pub fn is_option(&self) -> bool {
        match self.ty {
            Type::Path(p) => p
                .path
                .segments
                .last()
                .is_some_and(|s| s.ident == "Option" && !s.arguments.is_empty()),
            _ => false,
        }
    }
}

/// Reads the input; every problem goes to `cx`.
pub fn parse<'a>(cx: &Ctxt, input: &'a DeriveInput) -> Container<'a> {
    let mut table = Attr::<LitStr>::none(attr::TABLE);
    let mut slot = Attr::<LitStr>::none(attr::SCHEMA);
    let mut krate = Attr::<Path>::none(attr::CRATE);
    let mut primary_key_name = Attr::<LitStr>::none(attr::PRIMARY_KEY_NAME);
    let mut constraints = Vec::new();
    let mut indexes = Vec::new();
    for_each_tenant_meta(
        cx,
        &input.attrs,
        |meta| {
            if meta.path.is_ident(attr::TABLE) {
                let v = parse_lit_str(meta)?;
                table.set(cx, meta, v);
            } else if meta.path.is_ident(attr::SCHEMA) {
                let v = parse_lit_str(meta)?;
                slot.set(cx, meta, v);
            } else if meta.path.is_ident(attr::CRATE) {
                let v = parse_crate(cx, meta.value()?)?;
                krate.set(cx, meta, v);
            } else if meta.path.is_ident(attr::PRIMARY_KEY_NAME) {
                let v = parse_lit_str(meta)?;
                primary_key_name.set(cx, meta, v);
            } else if meta.path.is_ident(attr::UNIQUE) {
                constraints.push(schema::parse_unique(meta)?);
            } else if meta.path.is_ident(attr::CHECK) {
                constraints.push(schema::parse_check(meta)?);
            } else if meta.path.is_ident(attr::FOREIGN_KEY) {
                constraints.push(schema::parse_foreign_key(cx, meta)?);
            } else if meta.path.is_ident(attr::INDEX) {
                indexes.push(schema::parse_index(meta, None)?);
            } else {
                return Ok(false);
            }
            Ok(true)
        },
        attr::CONTAINER_KEYS,
    );

    let named = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => Some(named),
            Fields::Unnamed(_) | Fields::Unit => {
                cx.error_spanned_by(
                    input.ident.clone(),
                    "Model needs a struct with named fields (each field is a column); tuple and unit structs have no column names",
                );
                None
            }
        },
        Data::Enum(e) => {
            cx.error_spanned_by(
                e.enum_token,
                "Model can only be derived for structs with named fields, not enums; for an enum column type derive `SqlEnum` on the enum instead",
            );
            None
        }
        Data::Union(u) => {
            cx.error_spanned_by(
                u.union_token,
                "Model can only be derived for structs with named fields, not unions",
            );
            None
        }
    };
    let generic = !input.generics.params.is_empty();
    if generic {
        cx.error_spanned_by(
            &input.generics,
            "Model cannot be derived for a generic struct: a table has one fixed set of column types",
        );
    }

    let fields = named.map(|n| n.named.iter().map(|f| parse_field(cx, f)).collect());
    let table_lit = table.get();
    Container {
        ident: &input.ident,
        table: table_lit
            .as_ref()
            .map(LitStr::value)
            .unwrap_or_else(|| snake(&input.ident.to_string())),
        table_lit,
        slot: slot.get(),
        krate: krate.get(),
        fields,
        generic,
        constraints,
        indexes,
        primary_key_name: primary_key_name.get(),
    }
}

fn parse_field<'a>(cx: &Ctxt, field: &'a syn::Field) -> Field<'a> {
    let ident = field.ident.as_ref().expect("named field");
    let mut rename = Attr::<LitStr>::none(attr::RENAME);
    let mut primary_key = Flag::none(attr::PRIMARY_KEY);
    let mut identity = Flag::none(attr::IDENTITY);
    let mut unique = Flag::none(attr::UNIQUE);
    let mut index = Flag::none(attr::INDEX);
    let mut default = Attr::<LitStr>::none(attr::DEFAULT);
    let mut references = Attr::<Path>::none(attr::REFERENCES);
    let mut sql_type = Attr::<LitStr>::none(attr::SQL_TYPE);
    let mut unique_name = None;
    let mut index_def = Attr::<Index>::none(attr::INDEX);
    let mut on_delete = Attr::<Action>::none(attr::ON_DELETE);
    let mut on_update = Attr::<Action>::none(attr::ON_UPDATE);
    let mut foreign_key_name = Attr::<LitStr>::none(attr::FOREIGN_KEY_NAME);
    let mut check = Attr::<Constraint>::none(attr::CHECK);
    let mut identity_options = IdentityOptions::default();
    for_each_tenant_meta(
        cx,
        &field.attrs,
        |meta| {
            let p = &meta.path;
            if p.is_ident(attr::RENAME) {
                let v = parse_lit_str(meta)?;
                rename.set(cx, meta, v);
            } else if p.is_ident(attr::PRIMARY_KEY) {
                primary_key.set(cx, meta);
            } else if p.is_ident(attr::IDENTITY) {
                identity_options = schema::parse_identity(meta)?;
                identity.set(cx, meta);
            } else if p.is_ident(attr::UNIQUE) {
                unique_name = schema::parse_field_unique(meta)?;
                unique.set(cx, meta);
            } else if p.is_ident(attr::INDEX) {
                let v = schema::parse_index(meta, Some(ident))?;
                index_def.set(cx, meta, v);
                index.set(cx, meta);
            } else if p.is_ident(attr::ON_DELETE) {
                let v = schema::parse_action(cx, meta)?;
                on_delete.set(cx, meta, v);
            } else if p.is_ident(attr::ON_UPDATE) {
                let v = schema::parse_action(cx, meta)?;
                on_update.set(cx, meta, v);
            } else if p.is_ident(attr::FOREIGN_KEY_NAME) {
                let v = parse_lit_str(meta)?;
                foreign_key_name.set(cx, meta, v);
            } else if p.is_ident(attr::CHECK) {
                let v = schema::parse_check(meta)?;
                check.set(cx, meta, v);
            } else if p.is_ident(attr::DEFAULT) {
                let v = parse_lit_str(meta)?;
                default.set(cx, meta, v);
            } else if p.is_ident(attr::REFERENCES) {
                let v = parse_path(meta)?;
                references.set(cx, meta, v);
            } else if p.is_ident(attr::SQL_TYPE) {
                let v = parse_lit_str(meta)?;
                sql_type.set(cx, meta, v);
            } else {
                return Ok(false);
            }
            Ok(true)
        },
        attr::FIELD_KEYS,
    );
    let rename = rename.get();
    let column = rename.as_ref().map(LitStr::value).unwrap_or_else(|| {
        let s = ident.to_string();
        s.strip_prefix("r#").map(str::to_owned).unwrap_or(s)
    });
    Field {
        ident,
        ty: &field.ty,
        column,
        rename,
        primary_key,
        identity,
        unique: unique.get(),
        unique_name,
        index: index.get(),
        index_def: index_def.get(),
        default: default.get(),
        references: references.get_with_tokens().map(|(_, p)| p),
        on_delete: on_delete.get_with_tokens(),
        on_update: on_update.get_with_tokens(),
        foreign_key_name: foreign_key_name.get_with_tokens(),
        check: check.get(),
        identity_options,
        sql_type: sql_type.get(),
    }
}
