//! One file per subcommand.

pub mod bench;
pub mod chat;
mod engine_args;
pub mod generate;
pub mod plugin;
pub mod score;
