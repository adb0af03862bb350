//! One file per subcommand.

pub mod bench;
pub mod chat;
pub mod engine_args;
pub mod generate;
pub mod plugin;
pub mod report;
pub mod run;
pub mod score;
pub mod serve;
