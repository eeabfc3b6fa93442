//! Test harness for tenant (filled in by the next commit).
