//! A set of models created and dropped together, in foreign-key order: SQLAlchemy's
//! `MetaData`.

use std::collections::HashMap;
use std::fmt;

use crate::door::SchemaName;
use crate::error::{Error, ModelError, Result};
use crate::exec::Db;
use crate::exec::{Executor, Writable};
use crate::model::ddl;
use crate::model::Model;
use crate::model::{ColumnDef, ConstraintDef, EnumType, IndexDef, TableConstraint};
use crate::sql::{default_for_slot, SchemaMap, Slot, Template};

/// What a [`ModelSet`] keeps of one model: its metadata and its DDL.
///
/// ```
/// use tenant_runtime::model::ModelInfo;
/// use tenant_runtime::{Model, ModelSet, Slot};
///
/// #[derive(Model)]
/// #[tenant(table = "customers")]
/// struct Customer { #[tenant(primary_key, identity)] id: i64, name: String }
///
/// #[derive(Model)]
/// #[tenant(table = "invoices")]
/// struct Invoice {
///     #[tenant(primary_key, identity)] id: i64,
///     #[tenant(references = Customer)] customer_id: i64,
/// }
///
/// let models = ModelSet::new().with::<Invoice>().with::<Customer>();
/// let order: Vec<&str> = models.create_order()?.iter().map(|m| m.name).collect();
/// assert_eq!(order, ["Customer", "Invoice"]);       // referenced tables first
/// assert_eq!(ModelInfo::of::<Invoice>().table, "invoices");
/// # Ok::<(), tenant_runtime::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct ModelInfo {
    /// The Rust type name.
    pub name: &'static str,
    /// The table.
    pub table: &'static str,
    /// The slot the table lives in.
    pub slot: Slot,
    /// The columns (with their foreign keys).
    pub columns: &'static [ColumnDef],
    /// The primary-key columns, in key order (empty without a primary key).
    pub primary_key: &'static [&'static str],
    /// Every constraint, named ([`Model::CONSTRAINTS`]).
    pub constraints: &'static [TableConstraint],
    /// Every index that backs no constraint, named ([`Model::INDEXES`]).
    pub indexes: &'static [IndexDef],
    create: fn() -> Vec<Template>,
    drop: fn() -> Template,
}

impl ModelInfo {
    /// The metadata and DDL of `M`.
    ///
    /// ```
    /// # use tenant_runtime::model::ModelInfo;
    /// # use tenant_runtime::{Model, Slot};
    /// # #[derive(Model)] #[tenant(table = "notes")] struct Note { #[tenant(primary_key)] id: i64 }
    /// let info = ModelInfo::of::<Note>();
    /// assert_eq!((info.name, info.table, info.slot), ("Note", "notes", Slot::Tenant));
    /// ```
    pub fn of<M: Model>() -> ModelInfo {
        ModelInfo {
            name: M::NAME,
            table: M::TABLE,
            slot: M::SLOT,
            columns: M::COLUMNS,
            primary_key: M::PRIMARY_KEY,
            constraints: M::CONSTRAINTS,
            indexes: M::INDEXES,
            create: ddl::create_table::<M>,
            drop: ddl::drop_table::<M>,
        }
    }

    /// `CREATE TABLE IF NOT EXISTS` (with constraints), then its `CREATE INDEX` statements,
    /// for this model: one statement per template ([`ddl::create_table`]).
    pub(crate) fn create_table(&self) -> Vec<Template> {
        (self.create)()
    }

    /// [`ddl::drop_table`] of this model.
    fn drop_ddl(&self) -> Template {
        (self.drop)()
    }
}

impl fmt::Debug for ModelInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}.\"{}\")", self.name, self.slot, self.table)
    }
}

/// A set of models that make up one application's schema, created and dropped together
/// (SQLAlchemy's `MetaData`).
///
/// Tables are created in foreign-key order (a referenced table before the tables that
/// reference it) and dropped in the reverse order. The enum types of their columns
/// (`#[derive(SqlEnum)]`, see [`ModelSet::enum_types`]) are created before all tables, in
/// the slot of the models that use them, and dropped after them. A model may reference itself; a cycle
/// between models is [`ModelError::ForeignKeyCycle`] naming the cycle.
///
/// Models in the tenant slot are per tenant ([`ModelSet::create_tenant_tables`], what
/// provisioning runs); models in named slots are shared by all tenants and created once
/// ([`ModelSet::create_shared_tables`]).
///
/// ```
/// use tenant_runtime::{Model, ModelSet};
///
/// #[derive(Model)]
/// #[tenant(table = "customers")]
/// struct Customer { #[tenant(primary_key, identity)] id: i64 }
///
/// #[derive(Model)]
/// #[tenant(table = "invoices")]
/// struct Invoice { #[tenant(primary_key, identity)] id: i64, #[tenant(references = Customer)] customer_id: i64 }
///
/// // Registration order does not matter: creation follows the foreign keys.
/// let models = ModelSet::new().with::<Invoice>().with::<Customer>();
/// let order: Vec<_> = models.create_order()?.iter().map(|m| m.name).collect();
/// assert_eq!(order, ["Customer", "Invoice"]);
/// # Ok::<(), tenant_runtime::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct ModelSet {
    models: Vec<ModelInfo>,
}

impl ModelSet {
    /// An empty set.
    pub fn new() -> ModelSet {
        ModelSet::default()
    }

    /// Adds `M` (adding the same model twice keeps one).
    pub fn with<M: Model>(mut self) -> ModelSet {
        self.add(ModelInfo::of::<M>());
        self
    }

    /// Adds a model by its [`ModelInfo`] (adding the same model twice keeps one).
    ///
    /// ```
    /// # use tenant_runtime::model::ModelInfo;
    /// # use tenant_runtime::{Model, ModelSet};
    /// # #[derive(Model)] #[tenant(table = "notes")] struct Note { #[tenant(primary_key)] id: i64 }
    /// let mut models = ModelSet::new();
    /// models.add(ModelInfo::of::<Note>());
    /// models.add(ModelInfo::of::<Note>());
    /// assert_eq!(models.len(), 1);
    /// ```
    pub fn add(&mut self, model: ModelInfo) {
        let same =
            |m: &ModelInfo| m.name == model.name && m.table == model.table && m.slot == model.slot;
        if !self.models.iter().any(same) {
            self.models.push(model);
        }
    }

    /// The models, in registration order.
    pub fn models(&self) -> &[ModelInfo] {
        &self.models
    }

    /// Number of models.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// Checks the set: no two models for one table, every referenced model in the set, no
    /// shared model referencing a tenant model, no foreign-key cycle.
    ///
    /// ```
    /// # use tenant_runtime::{error::ModelError, Model, ModelSet, Error};
    /// # #[derive(Model)] #[tenant(table = "customers")] struct Customer { #[tenant(primary_key)] id: i64 }
    /// # #[derive(Model)] #[tenant(table = "invoices")] struct Invoice { #[tenant(primary_key)] id: i64, #[tenant(references = Customer)] customer_id: i64 }
    /// let err = ModelSet::new().with::<Invoice>().validate().unwrap_err();
    /// assert!(err.to_string().contains("add `.with::<Customer>()`"));
    /// assert!(matches!(err, Error::Model(ModelError::MissingReference { target: "Customer", .. })));
    /// ```
    pub fn validate(&self) -> Result<()> {
        self.create_order()?;
        self.enum_types(|_| true).map(|_| ())
    }

    /// The enum types (`#[derive(SqlEnum)]`) of the models whose slot satisfies `keep`, each
    /// once per slot (they live in the slot of the models that use them), in model order;
    /// [`ModelError::ConflictingEnumType`] if two of one name in one slot differ.
    ///
    /// ```
    /// use tenant_runtime::{Model, ModelSet, Slot, SqlEnum};
    ///
    /// #[derive(Debug, SqlEnum)] enum Status { Open, Closed }
    /// #[derive(Model)] #[tenant(table = "tickets")]
    /// struct Ticket { #[tenant(primary_key)] id: i64, status: Status }
    /// #[derive(Model)] #[tenant(table = "plans", schema = "shared")]
    /// struct Plan { #[tenant(primary_key)] code: String, status: Option<Status> }
    ///
    /// let models = ModelSet::new().with::<Ticket>().with::<Plan>();
    /// let types = models.enum_types(|_| true)?;
    /// let found: Vec<_> = types.iter().map(|(slot, ty)| (*slot, ty.name)).collect();
    /// assert_eq!(found, [(Slot::Tenant, "status"), (Slot::Named("shared"), "status")]);
    /// // The tenant DDL creates the type before the table.
    /// let ddl = models.tenant_tables_ddl()?;
    /// assert!(ddl[0].to_string().contains(r#"CREATE TYPE {tenant}."status" AS ENUM ('open', 'closed')"#));
    /// assert!(ddl[1].to_string().starts_with(r#"CREATE TABLE IF NOT EXISTS {tenant}."tickets""#));
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn enum_types(
        &self,
        keep: impl Fn(Slot) -> bool,
    ) -> Result<Vec<(Slot, &'static EnumType)>> {
        let mut out: Vec<(Slot, &'static EnumType)> = Vec::new();
        for m in self.models.iter().filter(|m| keep(m.slot)) {
            for ty in ddl::enum_types_of(m.columns) {
                match out.iter().find(|(s, t)| *s == m.slot && t.name == ty.name) {
                    Some((_, seen)) if seen.labels != ty.labels => {
                        return Err(ModelError::ConflictingEnumType {
                            slot: m.slot.name(),
                            name: ty.name,
                            first: seen.labels,
                            second: ty.labels,
                        }
                        .into())
                    }
                    Some(_) => {}
                    None => out.push((m.slot, ty)),
                }
            }
        }
        Ok(out)
    }

    /// The models in creation order: every model after the models it references.
    /// Ties keep registration order, so the order is deterministic.
    pub fn create_order(&self) -> Result<Vec<&ModelInfo>> {
        let mut by_table: HashMap<(Slot, &str), usize> = HashMap::new();
        for (i, m) in self.models.iter().enumerate() {
            if let Some(&other) = by_table.get(&(m.slot, m.table)) {
                return Err(ModelError::DuplicateTable {
                    first: self.models[other].name,
                    second: m.name,
                    slot: m.slot.name(),
                    table: m.table,
                }
                .into());
            }
            by_table.insert((m.slot, m.table), i);
        }
        // edges[i]: the models model i references.
        let mut edges: Vec<Vec<usize>> = Vec::with_capacity(self.models.len());
        for m in &self.models {
            let mut targets = Vec::new();
            // Foreign keys: the columns' own (`references`), and the container-level
            // `foreign_key(..)` ones, which only the constraint list has.
            let composite = m.constraints.iter().filter_map(|k| match k.def {
                ConstraintDef::ForeignKey {
                    columns,
                    model,
                    table,
                    slot,
                    ..
                } if columns.len() > 1
                    || !m
                        .columns
                        .iter()
                        .any(|c| c.name == columns[0] && c.references.is_some()) =>
                {
                    Some((columns[0], model, table, slot))
                }
                _ => None,
            });
            let fks: Vec<(&'static str, &'static str, &'static str, Slot)> = m
                .columns
                .iter()
                .filter_map(|c| c.references.map(|fk| (c.name, fk.model, fk.table, fk.slot)))
                .chain(composite)
                .collect();
            for (column, model, table, slot) in fks {
                let fk = ForeignKeyRef { model, table, slot };
                if (fk.slot, fk.table) == (m.slot, m.table) {
                    continue; // a self-reference needs no order
                }
                let Some(&target) = by_table.get(&(fk.slot, fk.table)) else {
                    return Err(ModelError::MissingReference {
                        model: m.name,
                        column,
                        target: fk.model,
                        slot: fk.slot.name(),
                        table: fk.table,
                    }
                    .into());
                };
                if let (Slot::Named(slot), Slot::Tenant) = (m.slot, fk.slot) {
                    return Err(ModelError::SharedReferencesTenant {
                        model: m.name,
                        slot,
                        target: fk.model,
                    }
                    .into());
                }
                targets.push(target);
            }
            edges.push(targets);
        }
        let n = self.models.len();
        let mut placed = vec![false; n];
        let mut order = Vec::with_capacity(n);
        while order.len() < n {
            let next = (0..n).find(|&i| !placed[i] && edges[i].iter().all(|&t| placed[t]));
            match next {
                Some(i) => {
                    placed[i] = true;
                    order.push(&self.models[i]);
                }
                None => {
                    return Err(ModelError::ForeignKeyCycle {
                        cycle: self.find_cycle(&edges, &placed),
                    }
                    .into())
                }
            }
        }
        Ok(order)
    }

    /// One cycle among the models not yet placed (every one of them has an unplaced target,
    /// so following targets must come back to a model already seen), first model repeated.
    fn find_cycle(&self, edges: &[Vec<usize>], placed: &[bool]) -> Vec<&'static str> {
        let start = (0..placed.len())
            .find(|&i| !placed[i])
            .expect("a model is left");
        let mut path = vec![start];
        loop {
            let last = *path.last().expect("non-empty");
            let next = *edges[last]
                .iter()
                .find(|&&t| !placed[t])
                .expect("an unplaced model has an unplaced target");
            if let Some(pos) = path.iter().position(|&p| p == next) {
                return path[pos..]
                    .iter()
                    .chain(std::iter::once(&next))
                    .map(|&i| self.models[i].name)
                    .collect();
            }
            path.push(next);
        }
    }

    /// The DDL creating every model whose slot satisfies `keep`, in foreign-key order, one
    /// statement per template.
    /// Their enum types come first: a table needs the types of its columns.
    fn create_statements(&self, keep: impl Fn(Slot) -> bool) -> Result<Vec<Template>> {
        let order = self.create_order()?;
        let types = self.enum_types(&keep)?;
        Ok(types
            .into_iter()
            .map(|(slot, ty)| ddl::create_enum_type(slot, ty))
            .chain(
                order
                    .into_iter()
                    .filter(|m| keep(m.slot))
                    .flat_map(ModelInfo::create_table),
            )
            .collect())
    }

    /// The DDL dropping every model whose slot satisfies `keep`, in reverse foreign-key order,
    /// then their enum types (no longer used by these tables).
    fn drop_statements(&self, keep: impl Fn(Slot) -> bool) -> Result<Vec<Template>> {
        let order = self.create_order()?;
        let types = self.enum_types(&keep)?;
        Ok(order
            .into_iter()
            .rev()
            .filter(|m| keep(m.slot))
            .map(ModelInfo::drop_ddl)
            .chain(
                types
                    .into_iter()
                    .map(|(slot, ty)| ddl::drop_enum_type(slot, ty)),
            )
            .collect())
    }

    /// The statements that create the tenant-slot models, in foreign-key order, one
    /// statement per template (what provisioning runs inside its transaction).
    ///
    /// ```
    /// # use tenant_runtime::{Model, ModelSet};
    /// # #[derive(Model)] #[tenant(table = "plans", schema = "shared")] struct Plan { #[tenant(primary_key)] code: String }
    /// # #[derive(Model)] #[tenant(table = "notes")] struct Note { #[tenant(primary_key)] id: i64, #[tenant(references = Plan)] plan: String }
    /// let ddl = ModelSet::new().with::<Note>().with::<Plan>().tenant_tables_ddl()?;
    /// assert_eq!(ddl.len(), 1);
    /// let notes = ddl[0].to_string();
    /// assert!(notes.starts_with(r#"CREATE TABLE IF NOT EXISTS {tenant}."notes""#));
    /// assert!(notes.contains(r#"REFERENCES {shared}."plans""#));
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn tenant_tables_ddl(&self) -> Result<Vec<Template>> {
        self.create_statements(|slot| slot == Slot::Tenant)
    }

    /// Creates every model, shared and per tenant, in foreign-key order, in one transaction
    /// (`db`'s, if it is one), one statement per query string (named slots resolve through
    /// `db`'s maps).
    ///
    /// ```no_run
    /// # use tenant_runtime::{Allowlist, Client, Model, ModelSet};
    /// # #[derive(Model)] #[tenant(table = "notes")] struct Note { #[tenant(primary_key)] id: i64 }
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
    /// let db = client.for_tenant(&acme);
    /// db.create_schema().await?;
    /// ModelSet::new().with::<Note>().create_all(&db).await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_all<E: Writable>(&self, db: &Db<E>) -> Result<()> {
        run_ddl(db, &self.create_statements(|_| true)?).await
    }

    /// Creates the tenant-slot models in `db`'s tenant schema, in foreign-key order, in one
    /// transaction. Shared models they reference must exist already.
    ///
    /// ```no_run
    /// # use tenant_runtime::{Allowlist, Client, Model, ModelSet};
    /// # #[derive(Model)] #[tenant(table = "notes")] struct Note { #[tenant(primary_key)] id: i64 }
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// # let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
    /// ModelSet::new().with::<Note>().create_tenant_tables(&client.for_tenant(&acme)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_tenant_tables<E: Writable>(&self, db: &Db<E>) -> Result<()> {
        run_ddl(db, &self.tenant_tables_ddl()?).await
    }

    /// Drops every model (shared ones too) in reverse foreign-key order.
    ///
    /// ```no_run
    /// # use tenant_runtime::{Allowlist, Client, Model, ModelSet};
    /// # #[derive(Model)] #[tenant(table = "notes")] struct Note { #[tenant(primary_key)] id: i64 }
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// # let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
    /// ModelSet::new().with::<Note>().drop_all(&client.for_tenant(&acme)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn drop_all<E: Writable>(&self, db: &Db<E>) -> Result<()> {
        run_ddl(db, &self.drop_statements(|_| true)?).await
    }

    /// Drops the tenant-slot models of `db`'s tenant, in reverse foreign-key order.
    ///
    /// ```no_run
    /// # use tenant_runtime::{Allowlist, Client, Model, ModelSet};
    /// # #[derive(Model)] #[tenant(table = "notes")] struct Note { #[tenant(primary_key)] id: i64 }
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// # let mut client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// # let acme = Allowlist::from_pairs([("acme", "tenant_acme")])?.resolve("acme")?;
    /// ModelSet::new().with::<Note>().drop_tenant_tables(&client.for_tenant(&acme)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn drop_tenant_tables<E: Writable>(&self, db: &Db<E>) -> Result<()> {
        run_ddl(db, &self.drop_statements(|slot| slot == Slot::Tenant)?).await
    }

    /// Creates the models of named (shared) slots, once for all tenants, in foreign-key order,
    /// in one transaction, one statement per query string. Each slot is filled by `map` if it
    /// maps it, else by the executor's connection map, else by the schema of the slot's name.
    /// The schemas must exist.
    ///
    /// ```no_run
    /// # use tenant_runtime::{Client, Model, ModelSet, SchemaMap};
    /// # #[derive(Model)] #[tenant(table = "plans", schema = "shared")] struct Plan { #[tenant(primary_key)] code: String }
    /// # async fn run() -> Result<(), tenant_runtime::Error> {
    /// let client = Client::connect("postgres://postgres@127.0.0.1/postgres").await?;
    /// let map = SchemaMap::new().with("shared", "public")?;
    /// ModelSet::new().with::<Plan>().create_shared_tables(&client, Some(&map)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_shared_tables<E: Writable>(
        &self,
        exec: &E,
        map: Option<&SchemaMap>,
    ) -> Result<()> {
        let mut statements = Vec::new();
        let order = self.create_order()?;
        for (slot, ty) in self.enum_types(|slot| slot != Slot::Tenant)? {
            let m = order
                .iter()
                .find(|m| m.slot == slot)
                .expect("a type comes from a model of its slot");
            statements.push(render_shared(
                &ddl::create_enum_type(slot, ty),
                m,
                exec,
                map,
            )?);
        }
        for m in order {
            if m.slot == Slot::Tenant {
                continue;
            }
            for template in m.create_table() {
                statements.push(render_shared(&template, m, exec, map)?);
            }
        }
        exec.conn_state().enum_types.clear();
        ddl::run_statements(exec.pg(), &statements).await
    }

    /// The qualified, quoted names (`"shared"."plans"`) of the shared-slot tables, in
    /// foreign-key order, each slot filled as by [`create_shared_tables`](Self::create_shared_tables).
    pub(crate) fn shared_table_names<E: Executor>(
        &self,
        exec: &E,
        map: Option<&SchemaMap>,
    ) -> Result<Vec<String>> {
        self.create_order()?
            .into_iter()
            .filter(|m| m.slot != Slot::Tenant)
            .map(|m| {
                let mut name = Template::builder();
                name.slot(m.slot).sql(".").ident(m.table);
                render_shared(&name.build(), m, exec, map)
            })
            .collect()
    }
}

async fn run_ddl<E: Executor>(db: &Db<E>, ddl: &[Template]) -> Result<()> {
    let statements = ddl
        .iter()
        .map(|t| db.render(t, None))
        .collect::<Result<Vec<_>>>()?;
    // Enum types may be created or dropped: their OIDs, cached for the unnamed mode, change.
    db.executor().conn_state().enum_types.clear();
    ddl::run_statements(db.executor().pg(), &statements).await
}

/// Renders the DDL of shared model `m`, whose slots are all named (statement map, then
/// connection map, then the slot's own name).
fn render_shared<E: Executor>(
    template: &Template,
    m: &ModelInfo,
    exec: &E,
    map: Option<&SchemaMap>,
) -> Result<String> {
    let mut failed = None;
    let sql = template.render(|slot| {
        let resolved = match slot {
            Slot::Named(name) => match map
                .and_then(|m| m.get(name))
                .or_else(|| exec.conn_state().map.get(name))
            {
                Some(schema) => Ok(schema),
                None => default_for_slot(name).map_err(Error::from),
            },
            // `create_order` refuses a shared model that references a per-tenant one.
            Slot::Tenant => Err(ModelError::SharedReferencesTenant {
                model: m.name,
                slot: m.slot.name().unwrap_or("tenant"),
                target: m
                    .columns
                    .iter()
                    .filter_map(|c| c.references)
                    .find(|fk| fk.slot == Slot::Tenant)
                    .map_or("?", |fk| fk.model),
            }
            .into()),
        };
        resolved.unwrap_or_else(|e| {
            failed = Some(e);
            SchemaName::parse("invalid").expect("valid")
        })
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(sql),
    }
}

/// One foreign key's target, from a column or a container-level constraint.
struct ForeignKeyRef {
    model: &'static str,
    table: &'static str,
    slot: Slot,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ForeignKey;

    fn fk(table: &'static str) -> Option<ForeignKey> {
        Some(ForeignKey {
            model: table,
            table,
            slot: Slot::Tenant,
            column: "id",
        })
    }

    fn column(name: &'static str, references: Option<ForeignKey>) -> ColumnDef {
        ColumnDef {
            name,
            field: name,
            sql_type: "BIGINT",
            nullable: false,
            primary_key: false,
            identity: false,
            identity_options: crate::model::IdentityOptions {
                always: false,
                start: None,
                increment: None,
            },
            unique: false,
            index: false,
            default: None,
            references,
            enum_type: None,
        }
    }

    fn info(name: &'static str, columns: &'static [ColumnDef]) -> ModelInfo {
        ModelInfo {
            name,
            table: name,
            slot: Slot::Tenant,
            columns,
            primary_key: &[],
            constraints: &[],
            indexes: &[],
            create: Vec::new,
            drop: || Template::builder().build(),
        }
    }

    #[test]
    fn cycle_is_named_in_the_error() {
        static A: [ColumnDef; 1] = [column_const("b_id", "b")];
        static B: [ColumnDef; 1] = [column_const("c_id", "c")];
        static C: [ColumnDef; 1] = [column_const("a_id", "a")];
        let mut set = ModelSet::new();
        set.add(info("a", &A));
        set.add(info("b", &B));
        set.add(info("c", &C));
        match set.create_order() {
            Err(Error::Model(ModelError::ForeignKeyCycle { cycle })) => {
                assert_eq!(cycle, ["a", "b", "c", "a"])
            }
            other => panic!("expected a cycle error, got {other:?}"),
        }
        let message = set.create_order().unwrap_err().to_string();
        assert!(
            message.contains("foreign-key cycle a -> b -> c -> a"),
            "{message}"
        );
    }

    const fn column_const(name: &'static str, target: &'static str) -> ColumnDef {
        ColumnDef {
            name,
            field: name,
            sql_type: "BIGINT",
            nullable: false,
            primary_key: false,
            identity: false,
            identity_options: crate::model::IdentityOptions {
                always: false,
                start: None,
                increment: None,
            },
            unique: false,
            index: false,
            default: None,
            references: Some(ForeignKey {
                model: target,
                table: target,
                slot: Slot::Tenant,
                column: "id",
            }),
            enum_type: None,
        }
    }

    #[test]
    fn self_reference_and_diamond_order() {
        let leaked = |cols: Vec<ColumnDef>| -> &'static [ColumnDef] { Vec::leak(cols) };
        let mut set = ModelSet::new();
        set.add(info(
            "d",
            leaked(vec![column("b_id", fk("b")), column("c_id", fk("c"))]),
        ));
        set.add(info("b", leaked(vec![column("a_id", fk("a"))])));
        set.add(info(
            "c",
            leaked(vec![column("a_id", fk("a")), column("parent", fk("c"))]),
        ));
        set.add(info("a", leaked(vec![column("id", None)])));
        let order: Vec<_> = set.create_order().unwrap().iter().map(|m| m.name).collect();
        assert_eq!(order, ["a", "b", "c", "d"]);
    }
}
