//! `embed_migrations!`: reads a directory of SQL migrations while compiling, checks every
//! file (through `tenant-sql`, the same rules as the run-time loader) and emits them as
//! `'static` templates with schema slots.

use std::path::PathBuf;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{bracketed, LitStr, Token};

const SLOTS: &str = "slots";
const CRATE: &str = "crate";

/// `"dir"` [, slots = ["a", ...]] [, crate = path]
pub struct Args {
    dir: LitStr,
    slots: Vec<LitStr>,
    krate: Option<syn::Path>,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.is_empty() {
            return Err(input.error(
                "expected the migrations directory, relative to the crate's Cargo.toml: `embed_migrations!(\"migrations\")`",
            ));
        }
        let dir: LitStr = input.parse()?;
        let mut args = Args {
            dir,
            slots: Vec::new(),
            krate: None,
        };
        let (mut seen_slots, mut seen_crate) = (false, false);
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            let key: syn::Ident = input.call(syn::ext::IdentExt::parse_any)?;
            input.parse::<Token![=]>()?;
            if key == SLOTS && !seen_slots {
                seen_slots = true;
                let content;
                bracketed!(content in input);
                let list = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?;
                args.slots = list.into_iter().collect();
            } else if key == CRATE && !seen_crate {
                seen_crate = true;
                args.krate = Some(input.parse()?);
            } else if key == SLOTS || key == CRATE {
                return Err(syn::Error::new(key.span(), format!("duplicate `{key}`")));
            } else {
                return Err(syn::Error::new(
                    key.span(),
                    format!("unknown argument `{key}`; expected `{SLOTS} = [\"...\"]` or `{CRATE} = path`"),
                ));
            }
        }
        Ok(args)
    }
}

pub fn expand(args: Args) -> TokenStream {
    let p = match &args.krate {
        Some(path) => quote!(#path::__private),
        None => quote!(::tenant_runtime::__private),
    };
    match embed(&args, &p) {
        Ok(tokens) => tokens,
        // An empty set next to the errors, so uses of the value report nothing more.
        Err(error) => {
            let errors = error.into_compile_error();
            quote! {{
                #errors
                #p::Migrations::from_static(&[])
            }}
        }
    }
}

fn embed(args: &Args, p: &TokenStream) -> syn::Result<TokenStream> {
    let slot_values: Vec<String> = args.slots.iter().map(LitStr::value).collect();
    let slot_refs: Vec<&str> = slot_values.iter().map(String::as_str).collect();
    if let Err(message) = tenant_sql::check_slots(&slot_refs) {
        let span = args.slots.first().map_or(args.dir.span(), LitStr::span);
        return Err(syn::Error::new(span, message));
    }
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").map_err(|_| {
        syn::Error::new(
            Span::call_site(),
            "CARGO_MANIFEST_DIR is not set; build with cargo",
        )
    })?;
    let dir = PathBuf::from(manifest_dir).join(args.dir.value());
    let dir_display = dir.display().to_string();
    let migrations = tenant_sql::check_dir(&dir, &slot_refs).map_err(|errors| {
        let mut errors = errors.into_iter().map(|mut e| {
            // Name the directory as the user wrote it, not as an absolute path.
            if e.file == dir_display {
                e.file = format!("directory {:?}", args.dir.value());
                return syn::Error::new(args.dir.span(), e.to_string());
            }
            syn::Error::new(args.dir.span(), format!("invalid migration {e}"))
        });
        let mut first = errors.next().expect("at least one error");
        for e in errors {
            first.combine(e);
        }
        first
    })?;

    let mut tracked = Vec::new();
    let mut statics = Vec::new();
    let mut items = Vec::new();
    for m in &migrations {
        // Makes cargo rebuild when a file changes (a new file needs a rebuild or a build
        // script's `rerun-if-changed`; see the docs).
        let path = dir.join(&m.file_name).display().to_string();
        tracked.push(quote!(
            const _: &[u8] = include_bytes!(#path);
        ));
        let pieces = |parts: &[tenant_sql::Part]| -> Vec<TokenStream> {
            parts
                .iter()
                .map(|part| match part {
                    tenant_sql::Part::Sql(s) => quote!(#p::Piece::Sql(#p::Cow::Borrowed(#s))),
                    tenant_sql::Part::Slot(tenant_sql::SlotRef::Tenant) => {
                        quote!(#p::Piece::Schema(#p::Slot::Tenant))
                    }
                    tenant_sql::Part::Slot(tenant_sql::SlotRef::Named(name)) => {
                        quote!(#p::Piece::Schema(#p::Slot::Named(#name)))
                    }
                })
                .collect()
        };
        // Each statement of the file is a template of its own (sent as its own query string),
        // in a static beside the list: a `&[Template]` needs a place to live.
        let statements_static =
            quote::format_ident!("__TENANT_MIGRATION_{}_STATEMENTS", items.len());
        let statements = m.statements.iter().map(|parts| {
            let pieces = pieces(parts);
            quote!(#p::Template::from_static(&[#(#pieces),*]))
        });
        let n_statements = m.statements.len();
        statics.push(quote! {
            static #statements_static: [#p::Template; #n_statements] = [#(#statements),*];
        });
        let whole = pieces(&m.parts);
        let (version, name, file, checksum) = (m.version, &m.name, &m.file_name, &m.checksum);
        items.push(quote! {
            #p::Migration::from_static(#version, #name, #file, #checksum, &[#(#whole),*], &#statements_static)
        });
    }
    let n = items.len();
    Ok(quote! {{
        #(#tracked)*
        #(#statics)*
        static __TENANT_MIGRATIONS: [#p::Migration; #n] = [#(#items),*];
        #p::Migrations::from_static(&__TENANT_MIGRATIONS)
    }})
}
