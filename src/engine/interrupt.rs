//! Ctrl-C (and SIGTERM, SIGHUP) without leaving the server half-changed.
//!
//! The default action of these signals kills the process on the spot, and
//! with it any chance to put the production apt mirror back. Instead, like
//! casey/just's interrupt guard, we only record that a signal arrived. The
//! executor polls the record while a child runs: it stops the child, then
//! every pending undo step runs to completion, and only then do we exit
//! with 130. A lost SSH session (SIGHUP) at 3 a.m. is treated the same way.
//!
//! Recording a signal is not enough when the tool sits in a read that never
//! returns (a FIFO, a pipe that stays silent): a watchdog thread ends the
//! process with 130 one second after a signal, unless something holds it
//! ([`crate::host::sys::Hold`]: a child being stopped, a change being put
//! back), in which case that code decides.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::error::{Error, Result};
use crate::host::sys;

/// How long after a signal the watchdog lets the code notice it by itself.
const WATCHDOG_GRACE: Duration = Duration::from_millis(700);

#[derive(Clone)]
pub struct Interrupt {
    signal: Arc<AtomicUsize>,
    count: Arc<AtomicUsize>,
}

impl Interrupt {
    /// Replaces the default action of SIGINT, SIGTERM and SIGHUP with a
    /// flag, and starts the watchdog.
    pub fn install() -> Result<Interrupt> {
        let interrupt = Interrupt {
            signal: Arc::new(AtomicUsize::new(0)),
            count: Arc::new(AtomicUsize::new(0)),
        };
        for number in [SIGINT, SIGTERM, SIGHUP] {
            let (signal, count) = (Arc::clone(&interrupt.signal), Arc::clone(&interrupt.count));
            let action = move || {
                signal.store(number as usize, Ordering::SeqCst);
                count.fetch_add(1, Ordering::SeqCst);
                sys::note_signal(number);
            };
            // SAFETY: the action only does atomic stores and adds, which are
            // async-signal-safe; it allocates nothing and takes no lock.
            unsafe { signal_hook::low_level::register(number, action) }.map_err(|error| {
                Error::bad_input(format!(
                    "cannot install the handler for signal {number}: {error}"
                ))
            })?;
        }
        std::thread::spawn(watchdog);
        Ok(interrupt)
    }

    /// How many signals arrived so far: a second Ctrl-C is told apart from the first.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// An interrupt that has already fired, without touching the process's
    /// signal handlers (tests run in parallel threads of one process).
    #[cfg(test)]
    pub fn fired(signal: i32) -> Interrupt {
        Interrupt {
            signal: Arc::new(AtomicUsize::new(signal as usize)),
            count: Arc::new(AtomicUsize::new(1)),
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

    /// Sleeps until `until`, or `Err(Interrupted)` within 50 ms of a
    /// signal: a wait between two readings must not outlast a Ctrl-C.
    pub fn sleep_until(&self, until: Instant) -> Result<()> {
        loop {
            self.check()?;
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50).min(until - now));
        }
    }
}

/// Ends the process with 130 when a signal has gone unanswered for
/// [`WATCHDOG_GRACE`] while nothing holds it: the main thread is then stuck
/// in a read, and nothing of the server's is half-changed.
fn watchdog() {
    let mut free_since: Option<Instant> = None;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        if !sys::interrupted() || sys::held() {
            free_since = None;
            continue;
        }
        let since = *free_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= WATCHDOG_GRACE {
            errln!("wazo-astdebug: error: interrupted; nothing was being changed");
            std::process::exit(130);
        }
    }
}
