//! Tollgate's policy catalogue and the ext_authz API-key service (the hot path).

pub mod authz;
pub mod catalogue;

pub use authz::{AuthzServer, AuthzService};
pub use catalogue::Catalogue;
