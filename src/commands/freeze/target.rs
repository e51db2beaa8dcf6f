//! Which Asterisk `freeze` looks at: the pid given or found, refused when
//! it is not Asterisk or another debugger already holds it.

use crate::context::Context;
use crate::error::{Error, Result};
use crate::host::asterisk;
use crate::output::Warnings;

pub fn find_pid(context: &Context, given: Option<u32>, warnings: &mut Warnings) -> Result<u32> {
    let pid = match given {
        Some(pid) => pid,
        None => {
            let lookup = asterisk::find(&context.host);
            for warning in &lookup.warnings {
                warnings.raise(warning.clone());
            }
            lookup.found.map(|found| found.pid).ok_or_else(|| {
                Error::bad_input(
                    "Asterisk is not running (no live pid in /run/asterisk/asterisk.pid, no process \
                     named asterisk): nothing to attach to. Give --pid, or analyse a core with --core FILE",
                )
            })?
        }
    };
    asterisk::check_is_asterisk(pid)?;
    // Before any check runs: a second debugger cannot attach, and the first
    // keeps Asterisk stopped.
    if let Some((tracer, name)) = asterisk::tracer(pid) {
        return Err(Error::AttachFailed {
            pid,
            reason: format!(
                "it is already traced by process {tracer} ({name}), which keeps it stopped; \
                 end that debugger (`kill {tracer}`) and run this again"
            ),
        });
    }
    Ok(pid)
}
