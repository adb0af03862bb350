//! What a plugin may touch, and how much it may use per call. The types live
//! in `lem-core` so configs can name them; this host enforces them.

pub use lem_core::policy::{DirGrant, Grants, Limits, Policy};
