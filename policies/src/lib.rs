//! Tollgate's policy catalogue and the ext_authz API-key service (the hot path).

pub mod catalogue;

pub use catalogue::Catalogue;
