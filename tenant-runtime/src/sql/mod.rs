//! SQL templates with schema slots: [`Template`] (literal pieces with [`Slot`]s between
//! them, fixed when the crate compiles) and [`SchemaMap`], which fills named slots when a
//! statement runs.

mod template;

pub(crate) use template::{default_for_slot, TemplateKey};
pub use template::{Piece, SchemaMap, Slot, Template};
