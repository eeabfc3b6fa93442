//! `embed_migrations!`: reads a directory of SQL migrations while compiling, checks every
//! file (through `tenant-sql`, the same rules as the run-time loader) and emits them as
//! `'static` templates with schema slots.

use std::path::PathBuf;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{bracketed, LitStr, Path, Token};

use crate::attr::parse_crate;
use crate::ctxt::Ctxt;
use crate::runtime::runtime_path;

const SLOTS: &str = "slots";
const CRATE: &str = "crate";

/// `"dir"` [, slots = ["a", ...]] [, crate = path]
pub struct Args {
    dir: LitStr,
    slots: Vec<LitStr>,
    krate: Option<Path>,
}

impl Args {
    fn parse(cx: &Ctxt, input: ParseStream<'_>) -> syn::Result<Self> {
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
            if key == SLOTS {
                let content;
                bracketed!(content in input);
                let list = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)?;
                if seen_slots {
                    cx.error_spanned_by(&key, format!("duplicate `{SLOTS}`"));
                } else {
                    args.slots = list.into_iter().collect();
                }
                seen_slots = true;
            } else if key == CRATE {
                let krate = parse_crate(cx, input)?;
                if seen_crate {
                    cx.error_spanned_by(&key, format!("duplicate `{CRATE}`"));
                } else {
                    args.krate = Some(krate);
                }
                seen_crate = true;
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

/// Expands one invocation: the migrations, or every error next to an empty set.
pub fn expand(tokens: TokenStream) -> TokenStream {
    let cx = Ctxt::new();
    let args = (|input: ParseStream<'_>| Args::parse(&cx, input)).parse2(tokens);
    let embedded = args.as_ref().ok().and_then(|args| embed(&cx, args));
    match (args, cx.check()) {
        (Ok(_), Ok(())) => embedded.expect("migrations are embedded unless there is an error"),
        // An empty set next to the errors, so uses of the value report nothing more.
        (Ok(args), Err(errors)) => {
            let p = runtime_path(args.krate.as_ref());
            let errors = errors.into_compile_error();
            quote! {{
                #errors
                #p::Migrations::from_static(&[])
            }}
        }
        (Err(mut e), errors) => {
            if let Err(more) = errors {
                e.combine(more);
            }
            e.into_compile_error()
        }
    }
}

fn embed(cx: &Ctxt, args: &Args) -> Option<TokenStream> {
    let p = runtime_path(args.krate.as_ref());
    let slot_values: Vec<String> = args.slots.iter().map(LitStr::value).collect();
    let slot_refs: Vec<&str> = slot_values.iter().map(String::as_str).collect();
    // Each bad slot is an error at its own literal.
    for (i, lit) in args.slots.iter().enumerate() {
        if let Some(problem) = tenant_sql::slot_problem(&slot_refs, i) {
            cx.error_spanned_by(lit, problem);
        }
    }
    if cx.has_errors() {
        return None;
    }
    let Ok(manifest_dir) = std::env::var("CARGO_MANIFEST_DIR") else {
        cx.error_at(
            Span::call_site(),
            "CARGO_MANIFEST_DIR is not set; build with cargo",
        );
        return None;
    };
    let dir = PathBuf::from(manifest_dir).join(args.dir.value());
    let dir_display = dir.display().to_string();
    let migrations = match tenant_sql::check_dir(&dir, &slot_refs) {
        Ok(migrations) => migrations,
        Err(errors) => {
            for mut e in errors {
                // Name the directory as the user wrote it, not as an absolute path.
                if e.file == dir_display {
                    e.file = format!("directory {:?}", args.dir.value());
                    cx.error_at(args.dir.span(), e);
                } else {
                    cx.error_at(args.dir.span(), format!("invalid migration {e}"));
                }
            }
            return None;
        }
    };

    let mut tracked = Vec::new();
    let mut statics = Vec::new();
    let mut items = Vec::new();
    for m in &migrations {
        // Makes cargo rebuild when a file changes (a new file needs a rebuild or a build
        // script's `rerun-if-changed`; see the docs). The path is built by the compiler
        // from `CARGO_MANIFEST_DIR`, so the expansion names no absolute path.
        let file = if std::path::Path::new(&args.dir.value()).is_absolute() {
            let path = dir.join(&m.file_name).display().to_string();
            quote!(#path)
        } else {
            let path = format!("/{}/{}", args.dir.value(), m.file_name);
            quote!(concat!(env!("CARGO_MANIFEST_DIR"), #path))
        };
        tracked.push(quote!(
            const _: &[u8] = include_bytes!(#file);
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
        // The down section's statements, in a static of their own likewise.
        let down = match &m.down {
            Some(down) => {
                let down_static = quote::format_ident!("__TENANT_MIGRATION_{}_DOWN", items.len());
                let statements = down.iter().map(|parts| {
                    let pieces = pieces(parts);
                    quote!(#p::Template::from_static(&[#(#pieces),*]))
                });
                let n = down.len();
                statics.push(quote! {
                    static #down_static: [#p::Template; #n] = [#(#statements),*];
                });
                quote!(::core::option::Option::Some(&#down_static))
            }
            None => quote!(::core::option::Option::None),
        };
        let whole = pieces(&m.parts);
        let (version, name, file, checksum) = (m.version, &m.name, &m.file_name, &m.checksum);
        items.push(quote! {
            #p::Migration::from_static(#version, #name, #file, #checksum, &[#(#whole),*], &#statements_static, #down)
        });
    }
    let n = items.len();
    Some(quote! {{
        #(#tracked)*
        #(#statics)*
        static __TENANT_MIGRATIONS: [#p::Migration; #n] = [#(#items),*];
        #p::Migrations::from_static(&__TENANT_MIGRATIONS)
    }})
}
