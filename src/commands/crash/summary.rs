//! The crash in a few lines: the signal, the crashing thread, its top
//! frames and the first one outside the C library.

use crate::engine::shell;
use crate::gdb::threads::{self, Analysis};

const TOP_FRAMES: usize = 6;

/// The signal, the crashing thread and its top frames.
pub fn summarise(analysis: &Analysis) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(signal) = &analysis.signal {
        let address = signal
            .address
            .as_deref()
            .filter(|_| matches!(signal.number, 7 | 11))
            .map(|address| format!(" at address {address}"))
            .unwrap_or_default();
        lines.push(format!(
            "Signal: {}{address}",
            threads::signal_name(signal.number)
        ));
    }
    let crashing = analysis
        .threads
        .iter()
        .find(|thread| Some(thread.num) == analysis.current_thread);
    if let Some(thread) = crashing {
        lines.push(format!(
            "Crashing thread: {} (gdb thread {})",
            thread.label(),
            thread.num
        ));
        for (index, frame) in thread.frames.iter().take(TOP_FRAMES).enumerate() {
            lines.push(format!("  #{index} {}", frame.describe()));
        }
        lines.extend(crashed_in(thread));
    }
    lines
}

/// The first frame of the crashing thread outside the C library (abort,
/// raise and memcpy say how it died, not where), with the file it is in and
/// the `addr2line` that names the line where symbols exist.
fn crashed_in(thread: &threads::Thread) -> Vec<String> {
    let Some(frame) = thread.frames.iter().find(|frame| !frame.in_libc()) else {
        return Vec::new();
    };
    let mut lines = vec![format!("Crashed in: {}", frame.describe())];
    if let Some(object) = &frame.object {
        lines.push(format!("  in {object}"));
        if frame.function == "??" {
            if let Some(offset) = &frame.offset {
                lines.push(format!(
                    "  addr2line -f -e {} {offset}",
                    shell::quote(object)
                ));
            }
        }
    }
    lines
}
