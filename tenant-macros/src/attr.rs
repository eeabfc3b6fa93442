//! `#[tenant(...)]` attributes: names, and parsing with duplicate and unknown-key checks; and
//! the `crate = path` argument every macro takes.

use syn::meta::ParseNestedMeta;
use syn::parse::ParseStream;
use syn::{Attribute, LitStr, Path, Token};

use crate::ctxt::Ctxt;

pub const TENANT: &str = "tenant";
// Container keys.
pub const TABLE: &str = "table";
pub const SCHEMA: &str = "schema";
pub const CRATE: &str = "crate";
pub const FOREIGN_KEY: &str = "foreign_key";
pub const PRIMARY_KEY_NAME: &str = "primary_key_name";
pub const CONTAINER_KEYS: &[&str] = &[
    TABLE,
    SCHEMA,
    CRATE,
    UNIQUE,
    INDEX,
    CHECK,
    FOREIGN_KEY,
    PRIMARY_KEY_NAME,
];
// Field keys.
pub const RENAME: &str = "rename";
pub const PRIMARY_KEY: &str = "primary_key";
pub const IDENTITY: &str = "identity";
pub const UNIQUE: &str = "unique";
pub const INDEX: &str = "index";
pub const DEFAULT: &str = "default";
pub const REFERENCES: &str = "references";
pub const SQL_TYPE: &str = "sql_type";
pub const CHECK: &str = "check";
pub const ON_DELETE: &str = "on_delete";
pub const ON_UPDATE: &str = "on_update";
pub const FOREIGN_KEY_NAME: &str = "foreign_key_name";
pub const FIELD_KEYS: &[&str] = &[
    RENAME,
    PRIMARY_KEY,
    IDENTITY,
    UNIQUE,
    INDEX,
    DEFAULT,
    REFERENCES,
    ON_DELETE,
    ON_UPDATE,
    FOREIGN_KEY_NAME,
    CHECK,
    SQL_TYPE,
];

// `#[derive(SqlEnum)]` keys: on the enum (`crate` too), on a variant (`rename`).
pub const TYPE_NAME: &str = "type_name";
pub const RENAME_ALL: &str = "rename_all";
pub const ENUM_KEYS: &[&str] = &[TYPE_NAME, RENAME_ALL, CRATE];
pub const VARIANT_KEYS: &[&str] = &[RENAME];

/// One attribute value with the tokens it came from (for spans).
pub struct Attr<T> {
    name: &'static str,
    value: Option<(proc_macro2::TokenStream, T)>,
}

impl<T> Attr<T> {
    pub fn none(name: &'static str) -> Self {
        Attr { name, value: None }
    }

    pub fn set(&mut self, cx: &Ctxt, span: &ParseNestedMeta<'_>, value: T) {
        let tokens = quote::ToTokens::to_token_stream(&span.path);
        if self.value.is_some() {
            cx.error_spanned_by(
                tokens,
                format!("duplicate tenant attribute `{}`", self.name),
            );
        } else {
            self.value = Some((tokens, value));
        }
    }

    pub fn get(self) -> Option<T> {
        self.value.map(|(_, v)| v)
    }

    pub fn get_with_tokens(self) -> Option<(proc_macro2::TokenStream, T)> {
        self.value
    }
}

pub struct Flag(Attr<()>);

impl Flag {
    pub fn none(name: &'static str) -> Self {
        Flag(Attr::none(name))
    }
    pub fn set(&mut self, cx: &Ctxt, meta: &ParseNestedMeta<'_>) {
        self.0.set(cx, meta, ());
    }
    pub fn get(&self) -> bool {
        self.0.value.is_some()
    }
    pub fn tokens(&self) -> Option<&proc_macro2::TokenStream> {
        self.0.value.as_ref().map(|(t, _)| t)
    }
}

/// Every `#[tenant(...)]` attribute among `attrs`, each nested item handed to `each`.
pub fn for_each_tenant_meta(
    cx: &Ctxt,
    attrs: &[Attribute],
    mut each: impl FnMut(&ParseNestedMeta<'_>) -> syn::Result<bool>,
    valid: &[&str],
) {
    for attr in attrs.iter().filter(|a| a.path().is_ident(TENANT)) {
        let result = attr.parse_nested_meta(|meta| {
            if each(&meta)? {
                return Ok(());
            }
            let key = meta
                .path
                .get_ident()
                .map(|i| i.to_string())
                .unwrap_or_else(|| {
                    let path = &meta.path;
                    quote::quote!(#path).to_string().replace(' ', "")
                });
            cx.error_spanned_by(
                &meta.path,
                format!(
                    "unknown tenant attribute `{key}`; expected one of: {}",
                    valid.join(", ")
                ),
            );
            skip_value(&meta)
        });
        if let Err(e) = result {
            cx.syn_error(e);
        }
    }
}

/// Consumes `= value` or `(...)` after an unknown key so parsing can go on.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        let _: Token![=] = meta.input.parse()?;
        let _: syn::Expr = meta.input.parse()?;
    } else if meta.input.peek(syn::token::Paren) {
        let _content;
        syn::parenthesized!(_content in meta.input);
    }
    Ok(())
}

pub fn parse_lit_str(meta: &ParseNestedMeta<'_>) -> syn::Result<LitStr> {
    meta.value()?.parse()
}

pub fn parse_path(meta: &ParseNestedMeta<'_>) -> syn::Result<Path> {
    meta.value()?.parse()
}

/// The value of `crate = path`, the same in the derive and in every function-like macro: a
/// bare path (`crate = my_lib::tenant`). A quoted path is an error that says to drop the
/// quotes; its path is still returned (when it is one) so that nothing else cascades.
pub fn parse_crate(cx: &Ctxt, input: ParseStream<'_>) -> syn::Result<Path> {
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        let value = lit.value();
        cx.error_spanned_by(
            &lit,
            format!(
                "`crate` takes a path, not a string: write `crate = {value}`, without the quotes"
            ),
        );
        return Ok(lit
            .parse::<Path>()
            .unwrap_or_else(|_| syn::parse_quote!(::tenant_runtime)));
    }
    input.parse::<Path>().map_err(|e| {
        syn::Error::new(
            e.span(),
            "`crate` takes the path to the runtime, e.g. `crate = my_lib::tenant` for a library that re-exports `tenant_runtime` as `tenant`",
        )
    })
}
