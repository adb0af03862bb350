//! One file per subcommand.

pub mod abliterate;
pub mod bench;
pub mod chat;
pub mod distill;
pub mod engine_args;
pub mod fuse;
pub mod generate;
pub mod judge;
pub mod plugin;
pub mod report;
pub mod run;
pub mod score;
pub mod serve;
pub mod train;
