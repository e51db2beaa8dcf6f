//! Stub.

use crate::cli::RunbooksArgs;
use crate::context::Context;
use crate::error::Result;

pub fn run(_context: &Context, _args: &RunbooksArgs) -> Result<()> {
    Ok(())
}
