//! Loads, verifies, sandboxes and calls lem plugins.
//!
//! A plugin is a WebAssembly component (see `wit/`) that anyone may have
//! written, so this crate treats every one as untrusted. Why it is shaped so:
//!
//! - [`inspect`] reads a component's imports and exports *before* anything is
//!   compiled or run, so a wrong world, an unsupported contract version or a
//!   forbidden import is refused with a message that names it.
//! - [`policy`] holds what a config may grant (clocks, random, env, dirs,
//!   network) and the per-call bounds (fuel, guest time, memory, output size).
//! - [`sandbox`] turns a policy into a store: deny-all WASI, a memory limiter,
//!   fuel, an epoch deadline that counts guest time only, bounded stderr.
//! - [`runtime`] owns the wasmtime engine, the compiled-component cache and
//!   the epoch ticker; it produces verified, pre-linked components.
//! - One file per capability ([`scorer`], [`kernel`], [`benchmark`]) wraps the
//!   bindings of each contract version (`v0_1_0`, `v0_2_0`: one module per
//!   version, each converting to the host's own types, which follow the
//!   newest contract) behind a version-free API. A released version never
//!   changes, so a plugin built against 0.1.0 loads and scores as it did.
//!   A call gets a fresh store, so one item's failure cannot touch the next;
//!   any trap, panic or limit becomes a [`CallError`] for that item.
//!
//! The host's judge reaches plugins through the [`judge::Judge`] trait: this
//! crate knows nothing of models.
#![deny(missing_docs)]

pub mod benchmark;
mod bound;
mod cache;
mod error;
pub mod inspect;
pub mod judge;
pub mod kernel;
pub mod policy;
pub mod runtime;
pub mod sandbox;
pub mod scorer;
mod v0_1_0;
mod v0_2_0;
mod watchdog;

pub use error::{CallError, CallErrorKind, LoadError};
pub use inspect::{ComponentInfo, World};
pub use judge::{Judge, JudgeAnswer, JudgeCall, JudgeError, JudgeRequest, NoJudge};
pub use policy::{DirGrant, Grants, Limits, Policy};
pub use runtime::{MetricDescriptor, PluginInfo, PluginSource, Runtime, RuntimeConfig};
pub use scorer::{ScoreOutcome, Scorer};

/// The contract versions this host loads, newest last.
pub const SUPPORTED_WIT_VERSIONS: &[&str] = &["0.1.0", "0.2.0"];
