//! SQL templates with schema slots: [`Template`] (literal pieces with [`Slot`]s between
//! them), [`TemplateBuilder`] (the one way to assemble a template at run time; the macros
//! emit theirs as `'static` pieces while compiling) and [`SchemaMap`], which fills named
//! slots when a statement runs.

mod builder;
mod template;

pub use builder::TemplateBuilder;
pub(crate) use template::{default_for_slot, TemplateKey};
pub use template::{Piece, SchemaMap, Slot, Template};
