//! The one door from untrusted input to a schema: [`Allowlist::resolve`] → [`Tenant`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use crate::door::SchemaName;
use crate::error::{AllowlistError, Duplicated, Error, Result};

/// Longest tenant key accepted by [`Allowlist::resolve`], in bytes.
pub const MAX_TENANT_KEY_LEN: usize = 255;

/// A tenant that came out of an [`Allowlist`]: the only thing a statement executes against.
///
/// There is no way to build a `Tenant` from a string, a [`SchemaName`] or anything else in
/// user code: its fields are private and it has no public constructor. Cloning is cheap.
///
/// ```
/// use tenant_runtime::Allowlist;
///
/// let allowlist = Allowlist::from_pairs([("acme", "tenant_acme")])?;
/// let acme = allowlist.resolve("acme")?;
/// assert_eq!(acme.key(), "acme");
/// assert_eq!(acme.schema().as_str(), "tenant_acme");
/// # Ok::<(), tenant_runtime::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Tenant {
    key: Arc<str>,
    schema: SchemaName,
}

impl Tenant {
    /// The key the tenant was resolved by (a subdomain, a JWT claim, a CLI argument...).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The schema the tenant's tables live in.
    pub fn schema(&self) -> SchemaName {
        self.schema
    }
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tenant")
            .field("key", &self.key)
            .field("schema", &self.schema.as_str())
            .finish()
    }
}

/// The set of known tenants, keyed by the string requests carry.
///
/// Built from `(key, schema)` pairs, replaceable at run time ([`Allowlist::replace`], e.g.
/// after reloading a registry table) and bounded in size. Cloning shares the same list.
///
/// ```
/// use tenant_runtime::{Allowlist, Error};
///
/// let allowlist = Allowlist::from_pairs([("acme", "tenant_acme"), ("globex", "tenant_globex")])?;
/// assert_eq!(allowlist.len(), 2);
/// assert!(matches!(allowlist.resolve("initech"), Err(Error::UnknownTenant { .. })));
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone)]
pub struct Allowlist {
    inner: Arc<RwLock<Entries>>,
    max_len: usize,
}

type Entries = HashMap<Box<str>, Tenant>;

impl Allowlist {
    /// Default bound on the number of tenants.
    pub const DEFAULT_MAX_LEN: usize = 1_000_000;

    /// An empty allowlist with the default bound.
    ///
    /// ```
    /// # use tenant_runtime::Allowlist;
    /// assert!(Allowlist::new().is_empty());
    /// ```
    pub fn new() -> Allowlist {
        Allowlist::with_max_len(Self::DEFAULT_MAX_LEN)
    }

    /// An empty allowlist that refuses to hold more than `max_len` tenants.
    ///
    /// ```
    /// # use tenant_runtime::{Allowlist, Error};
    /// let list = Allowlist::with_max_len(1);
    /// list.insert("a", "tenant_a")?;
    /// assert!(matches!(list.insert("b", "tenant_b"), Err(Error::Allowlist(tenant_runtime::error::AllowlistError::Full { max: 1 }))));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn with_max_len(max_len: usize) -> Allowlist {
        Allowlist {
            inner: Arc::new(RwLock::new(HashMap::new())),
            max_len,
        }
    }

    /// Builds an allowlist from `(key, schema)` pairs. Every key and schema is validated;
    /// duplicates and `public` are refused, and nothing is built if any pair is bad.
    ///
    /// ```
    /// # use tenant_runtime::{Allowlist, Error};
    /// assert!(Allowlist::from_pairs([("a", "s"), ("b", "s")]).is_err()); // one schema, two keys
    /// ```
    pub fn from_pairs<I, K, S>(pairs: I) -> Result<Allowlist>
    where
        I: IntoIterator<Item = (K, S)>,
        K: AsRef<str>,
        S: AsRef<str>,
    {
        let list = Allowlist::new();
        list.replace(pairs)?;
        Ok(list)
    }

    /// Adds one tenant (or changes its schema). Fails without changing anything on bad input.
    ///
    /// ```
    /// # use tenant_runtime::Allowlist;
    /// let list = Allowlist::new();
    /// list.insert("acme", "tenant_acme")?;
    /// assert!(list.contains("acme"));
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn insert(&self, key: &str, schema: &str) -> Result<Tenant> {
        let tenant = make_tenant(key, schema)?;
        let mut entries = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if !entries.contains_key(key) && entries.len() >= self.max_len {
            return Err(Error::Allowlist(AllowlistError::Full { max: self.max_len }));
        }
        if let Some(other) = entries
            .values()
            .find(|t| t.schema == tenant.schema && &*t.key != key)
        {
            return Err(Error::Allowlist(AllowlistError::DuplicateTenant {
                what: Duplicated::Schema,
                value: other.schema.as_str().into(),
            }));
        }
        entries.insert(key.into(), tenant.clone());
        Ok(tenant)
    }

    /// Removes a tenant; later [`resolve`](Allowlist::resolve) calls for it fail. Returns
    /// whether it was present.
    ///
    /// ```
    /// # use tenant_runtime::Allowlist;
    /// let list = Allowlist::from_pairs([("acme", "tenant_acme")])?;
    /// assert!(list.remove("acme"));
    /// assert!(list.resolve("acme").is_err());
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn remove(&self, key: &str) -> bool {
        let mut entries = self.inner.write().unwrap_or_else(|e| e.into_inner());
        entries.remove(key).is_some()
    }

    /// Replaces the whole list atomically (e.g. after reloading the registry table). On any
    /// bad pair the old list stays as it was.
    ///
    /// ```
    /// # use tenant_runtime::Allowlist;
    /// let list = Allowlist::from_pairs([("acme", "tenant_acme")])?;
    /// list.replace([("globex", "tenant_globex")])?;
    /// assert!(!list.contains("acme") && list.contains("globex"));
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn replace<I, K, S>(&self, pairs: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, S)>,
        K: AsRef<str>,
        S: AsRef<str>,
    {
        let mut fresh: Entries = HashMap::new();
        let mut schemas = std::collections::HashSet::new();
        for (key, schema) in pairs {
            let (key, schema) = (key.as_ref(), schema.as_ref());
            let tenant = make_tenant(key, schema)?;
            if !schemas.insert(tenant.schema) {
                return Err(Error::Allowlist(AllowlistError::DuplicateTenant {
                    what: Duplicated::Schema,
                    value: schema.into(),
                }));
            }
            if fresh.insert(key.into(), tenant).is_some() {
                return Err(Error::Allowlist(AllowlistError::DuplicateTenant {
                    what: Duplicated::Key,
                    value: key.into(),
                }));
            }
            if fresh.len() > self.max_len {
                return Err(Error::Allowlist(AllowlistError::Full { max: self.max_len }));
            }
        }
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// Looks a key up: the one door from untrusted input to a [`Tenant`].
    ///
    /// A malformed key (empty, longer than 255 bytes, control characters) is
    /// [`Error::InvalidTenantKey`]; a well-formed key that is not listed is
    /// [`Error::UnknownTenant`].
    ///
    /// ```
    /// # use tenant_runtime::{Allowlist, Error};
    /// let list = Allowlist::from_pairs([("acme", "tenant_acme")])?;
    /// assert_eq!(list.resolve("acme")?.schema().as_str(), "tenant_acme");
    /// assert!(matches!(list.resolve("acme\0"), Err(Error::InvalidTenantKey { .. })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn resolve(&self, key: &str) -> Result<Tenant> {
        validate_key(key)?;
        let entries = self.inner.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .cloned()
            .ok_or_else(|| Error::UnknownTenant { key: key.into() })
    }

    /// Whether `key` resolves to a tenant.
    pub fn contains(&self, key: &str) -> bool {
        self.resolve(key).is_ok()
    }

    /// Number of tenants.
    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether there are no tenants.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every tenant, sorted by key.
    ///
    /// ```
    /// # use tenant_runtime::Allowlist;
    /// let list = Allowlist::from_pairs([("b", "tenant_b"), ("a", "tenant_a")])?;
    /// let keys: Vec<_> = list.tenants().iter().map(|t| t.key().to_owned()).collect();
    /// assert_eq!(keys, ["a", "b"]);
    /// # Ok::<(), tenant_runtime::Error>(())
    /// ```
    pub fn tenants(&self) -> Vec<Tenant> {
        let entries = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<Tenant> = entries.values().cloned().collect();
        all.sort_by(|a, b| a.key.cmp(&b.key));
        all
    }
}

impl Default for Allowlist {
    fn default() -> Self {
        Allowlist::new()
    }
}

impl fmt::Debug for Allowlist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Allowlist")
            .field("len", &self.len())
            .field("max_len", &self.max_len)
            .finish()
    }
}

pub(crate) fn validate_key(key: &str) -> Result<()> {
    let reason = if key.is_empty() {
        "the key is empty"
    } else if key.len() > MAX_TENANT_KEY_LEN {
        "the key is longer than 255 bytes"
    } else if key.chars().any(char::is_control) {
        "the key contains a control character"
    } else if key.trim() != key {
        "the key has leading or trailing whitespace"
    } else {
        return Ok(());
    };
    Err(Error::InvalidTenantKey {
        key: key.into(),
        reason,
    })
}

/// Checks a `(key, schema)` pair by the rules [`Allowlist::insert`] applies, without a list.
pub(crate) fn check_pair(key: &str, schema: &str) -> Result<()> {
    make_tenant(key, schema).map(|_| ())
}

fn make_tenant(key: &str, schema: &str) -> Result<Tenant> {
    validate_key(key)?;
    let schema = SchemaName::parse(schema)?;
    if schema.as_str() == "public" {
        return Err(Error::Allowlist(AllowlistError::ReservedSchema {
            schema: "public".into(),
        }));
    }
    Ok(Tenant {
        key: key.into(),
        schema,
    })
}
