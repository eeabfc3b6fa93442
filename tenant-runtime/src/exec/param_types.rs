//! Parameter typing for the unnamed statement mode: each Rust value paired with the
//! built-in PostgreSQL type it encodes as.

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
pub(crate) fn typed_params<'a>(
    params: &[&'a (dyn postgres_types::ToSql + Sync)],
) -> crate::Result<TypedParams<'a>> {
    let mut scratch = bytes::BytesMut::new();
    let mut typed = TypedParams::with_capacity(params.len());
    for (index, param) in params.iter().enumerate() {
        let mut last_error = None;
        let found = PARAM_TYPES.iter().find(|ty| {
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
        let types: Vec<Type> = typed_params(&params)
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
        match typed_params(&params) {
            Err(crate::Error::UntypedParameter { position, detail }) => {
                assert_eq!(position, 2);
                assert!(detail.contains("Custom"), "{detail}");
            }
            other => panic!("expected UntypedParameter, got {:?}", other.map(|_| ())),
        }
    }
}
