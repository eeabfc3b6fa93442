//! Parameter typing for the unnamed statement mode: each Rust value paired with the
//! built-in PostgreSQL type it encodes as, or with the enum type (`#[derive(SqlEnum)]`) of
//! the statement's schemas it encodes as.
//!
//! Enum types are per schema: `status` in `tenant_acme` and `status` in `tenant_globex` are
//! two types with two OIDs. The unnamed statement carries its parameters' OIDs, and an array
//! of enums (`col = ANY($1)`) carries its element's OID in the value itself, which the server
//! checks, so "let the server infer the type" (OID 0) does not work for every parameter: the
//! OIDs of *this* statement's schemas are looked up, once per schema and connection, with
//! one unnamed catalog query (built-in result types only, so no statement is left behind),
//! and kept in a bounded per-connection cache ([`EnumTypeCache`]).

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;
use postgres_types::{Kind, Type};

use crate::door::SchemaName;
use crate::exec::PgRef;

/// The types [`typed_params`] tries, most common first. Every type here is built in, so
/// tokio-postgres never has to look one up (which would leave a named statement behind).
static PARAM_TYPES: [postgres_types::Type; 36] = {
    use postgres_types::Type;
    [
        Type::INT8,
        Type::TEXT,
        Type::INT4,
        Type::BOOL,
        Type::FLOAT8,
        Type::INT2,
        Type::FLOAT4,
        Type::BYTEA,
        Type::NUMERIC,
        Type::UUID,
        Type::TIMESTAMPTZ,
        Type::TIMESTAMP,
        Type::DATE,
        Type::TIME,
        Type::JSONB,
        Type::JSON,
        Type::INET,
        Type::INTERVAL,
        Type::OID,
        Type::CHAR,
        Type::INT8_ARRAY,
        Type::TEXT_ARRAY,
        Type::INT4_ARRAY,
        Type::BOOL_ARRAY,
        Type::FLOAT8_ARRAY,
        Type::INT2_ARRAY,
        Type::FLOAT4_ARRAY,
        Type::BYTEA_ARRAY,
        Type::NUMERIC_ARRAY,
        Type::UUID_ARRAY,
        Type::TIMESTAMPTZ_ARRAY,
        Type::TIMESTAMP_ARRAY,
        Type::DATE_ARRAY,
        Type::TIME_ARRAY,
        Type::JSONB_ARRAY,
        Type::INET_ARRAY,
    ]
};

/// Parameters paired with their PostgreSQL types, for the unnamed statement.
pub(crate) type TypedParams<'a> =
    smallvec::SmallVec<[(&'a (dyn postgres_types::ToSql + Sync), postgres_types::Type); 16]>;

/// Pairs each parameter with the first built-in type its Rust type accepts, for
/// [`StatementMode::Unnamed`](crate::StatementMode::Unnamed), where the types travel with the
/// statement instead of coming from a server-side prepare.
///
/// `ToSql` has no object-safe "which type are you" method, so each candidate type is tried
/// with `to_sql_checked`, which refuses a wrong type before encoding anything (a matching
/// type encodes the value once into a scratch buffer).
///
/// `extra` are further candidates, tried after the built-in types: the enum types of the
/// statement's schemas ([`schema_enum_types`]).
pub(crate) fn typed_params<'a>(
    params: &[&'a (dyn postgres_types::ToSql + Sync)],
    extra: &[Type],
) -> crate::Result<TypedParams<'a>> {
    let mut scratch = bytes::BytesMut::new();
    let mut typed = TypedParams::with_capacity(params.len());
    for (index, param) in params.iter().enumerate() {
        let mut last_error = None;
        let found = PARAM_TYPES.iter().chain(extra).find(|ty| {
            scratch.clear();
            match param.to_sql_checked(ty, &mut scratch) {
                Ok(_) => true,
                // Any other error means the type fits and the value does not: bind it with
                // this type and let the driver report the value's error.
                Err(e) if !e.is::<postgres_types::WrongType>() => true,
                Err(e) => {
                    last_error = Some(e);
                    false
                }
            }
        });
        match found {
            Some(ty) => typed.push((*param, ty.clone())),
            None => {
                return Err(crate::Error::UntypedParameter {
                    position: index + 1,
                    detail: last_error.map(|e| e.to_string()).unwrap_or_default(),
                })
            }
        }
    }
    Ok(typed)
}

/// The enum types of the schemas one connection has run unnamed statements with enum
/// parameters against, by schema: bounded ([`EnumTypeCache::CAPACITY`] schemas, least
/// recently used dropped first), since one connection serves any number of tenants.
///
/// An entry holds the OIDs the schema's types had when it was read: a type dropped and
/// created again (a tenant purged and provisioned again under the same schema name) has a
/// new OID, which this connection sees once the entry is evicted, or at once when the DDL
/// ran through this connection's [`ModelSet`](crate::ModelSet) (which clears the cache), as
/// with the prepared statements of the statement cache, which hold type OIDs too.
#[derive(Debug)]
pub(crate) struct EnumTypeCache {
    schemas: Mutex<LruCache<SchemaName, Arc<[Type]>>>,
}

impl EnumTypeCache {
    /// How many schemas' enum types one connection keeps.
    pub(crate) const CAPACITY: usize = 256;

    /// Forgets every schema (after DDL that may have created or dropped enum types).
    pub(crate) fn clear(&self) {
        self.schemas.lock().expect("enum type cache lock").clear();
    }
}

impl Default for EnumTypeCache {
    fn default() -> Self {
        EnumTypeCache {
            schemas: Mutex::new(LruCache::new(
                NonZeroUsize::new(Self::CAPACITY).expect("non-zero"),
            )),
        }
    }
}

/// The enum types of `schemas` and their array types, as tokio-postgres `Type`s with this
/// database's OIDs, from `cache` or, for the schemas it lacks, one catalog query.
pub(crate) async fn schema_enum_types(
    pg: PgRef<'_>,
    cache: &EnumTypeCache,
    schemas: &[SchemaName],
) -> crate::Result<Vec<Type>> {
    let mut out = Vec::new();
    let mut missing: Vec<SchemaName> = Vec::new();
    {
        let mut cached = cache.schemas.lock().expect("enum type cache lock");
        for schema in schemas {
            match cached.get(schema) {
                Some(types) => out.extend(types.iter().cloned()),
                None if !missing.contains(schema) => missing.push(*schema),
                None => {}
            }
        }
    }
    if missing.is_empty() {
        return Ok(out);
    }
    const SQL: &str = "\
SELECT n.nspname::text, t.typname::text, t.oid, t.typarray,
       ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e
             WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)
FROM pg_catalog.pg_type t
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype = 'e' AND n.nspname = ANY($1)";
    let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
    let rows = pg.query_typed(SQL, &[(&names, Type::TEXT_ARRAY)]).await?;
    let mut found: Vec<(SchemaName, Vec<Type>)> =
        missing.iter().map(|s| (*s, Vec::new())).collect();
    for row in &rows {
        let schema: String = row.try_get(0)?;
        let name: String = row.try_get(1)?;
        let oid: u32 = row.try_get(2)?;
        let array_oid: u32 = row.try_get(3)?;
        let labels: Vec<String> = row.try_get(4)?;
        let Some((_, types)) = found.iter_mut().find(|(s, _)| s.as_str() == schema) else {
            continue;
        };
        let element = Type::new(name.clone(), oid, Kind::Enum(labels), schema.clone());
        types.push(Type::new(
            format!("_{name}"),
            array_oid,
            Kind::Array(element.clone()),
            schema,
        ));
        types.push(element);
    }
    let mut cached = cache.schemas.lock().expect("enum type cache lock");
    for (schema, types) in found {
        out.extend(types.iter().cloned());
        cached.put(schema, types.into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use postgres_types::{IsNull, ToSql, Type};

    #[test]
    fn parameters_get_the_builtin_type_their_rust_type_accepts() {
        let text = String::from("x");
        let params: [&(dyn ToSql + Sync); 8] = [
            &1i64,
            &text,
            &"y",
            &7i32,
            &true,
            &None::<i16>,
            &vec![1i64, 2],
            &vec![0u8, 1],
        ];
        let types: Vec<Type> = typed_params(&params, &[])
            .unwrap()
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert_eq!(
            types,
            [
                Type::INT8,
                Type::TEXT,
                Type::TEXT,
                Type::INT4,
                Type::BOOL,
                Type::INT2,
                Type::INT8_ARRAY,
                Type::BYTEA
            ]
        );
    }

    #[derive(Debug)]
    struct Custom;
    impl ToSql for Custom {
        fn to_sql(
            &self,
            _: &Type,
            _: &mut bytes::BytesMut,
        ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
            Ok(IsNull::Yes)
        }
        fn accepts(ty: &Type) -> bool {
            ty.name() == "custom"
        }
        postgres_types::to_sql_checked!();
    }

    #[test]
    fn a_parameter_no_builtin_type_accepts_is_refused_with_its_position() {
        let params: [&(dyn ToSql + Sync); 2] = [&1i64, &Custom];
        match typed_params(&params, &[]) {
            Err(crate::Error::UntypedParameter { position, detail }) => {
                assert_eq!(position, 2);
                assert!(detail.contains("Custom"), "{detail}");
            }
            other => panic!("expected UntypedParameter, got {:?}", other.map(|_| ())),
        }
    }
}
