//! The command line: one module per subcommand.

pub mod eval;
pub mod prepare_data;
pub mod terminal;
pub mod train;
pub mod train_bench;
