//! RFC 3339 timestamps as the platform API writes them: now parsed by [`crate::clock`], named here
//! as the platform code knows them.

pub use crate::clock::{millis_of as unix_millis, seconds_of as unix_seconds};
