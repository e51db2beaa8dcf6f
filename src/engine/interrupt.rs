//! Ctrl-C (and SIGTERM, SIGHUP) without leaving the server half-changed.
//!
//! The default action of these signals kills the process on the spot, and
//! with it any chance to put the production apt mirror back. Instead, like
//! casey/just's interrupt guard, we only record that a signal arrived. The
//! executor polls the record while a child runs: it stops the child, then
//! every pending undo step runs to completion, and only then do we exit
//! with 130. A lost SSH session (SIGHUP) at 3 a.m. is treated the same way.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::error::{Error, Result};

#[derive(Clone)]
pub struct Interrupt {
    signal: Arc<AtomicUsize>,
}

impl Interrupt {
    /// Replaces the default action of SIGINT, SIGTERM and SIGHUP with a flag.
    pub fn install() -> Result<Interrupt> {
        let signal = Arc::new(AtomicUsize::new(0));
        for number in [SIGINT, SIGTERM, SIGHUP] {
            signal_hook::flag::register_usize(number, Arc::clone(&signal), number as usize)
                .map_err(|error| {
                    Error::bad_input(format!(
                        "cannot install the handler for signal {number}: {error}"
                    ))
                })?;
        }
        Ok(Interrupt { signal })
    }

    /// An interrupt that has already fired, without touching the process's
    /// signal handlers (tests run in parallel threads of one process).
    #[cfg(test)]
    pub fn fired(signal: i32) -> Interrupt {
        Interrupt {
            signal: Arc::new(AtomicUsize::new(signal as usize)),
        }
    }

    /// The signal received so far, if any.
    pub fn received(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            number => Some(number as i32),
        }
    }

    /// `Err(Interrupted)` once a signal has arrived: the point between two
    /// steps where the procedure gives up and unwinds.
    pub fn check(&self) -> Result<()> {
        match self.received() {
            Some(_) => Err(Error::Interrupted),
            None => Ok(()),
        }
    }
}
