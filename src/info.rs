//! Stub.

use crate::context::Context;
use crate::error::Result;

pub fn run(_context: &Context) -> Result<()> {
    Ok(())
}
