//! `freeze --samples N`: N readings of /proc, `--interval` apart, compared
//! (see `locks::progress`): frozen, or only slow. Taken before the CLI
//! checks and gdb: a `core show channels` that hangs adds a CLI thread to a
//! lock's queue, and gdb's stop and resume wakes every thread, which would
//! read as progress.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::host::procfs::Process;
use crate::host::sys::create_private;
use crate::locks::progress::{self, Progress, Snapshot};
use crate::output::Warnings;

/// At most this many samples: past it, `watch` is the tool.
pub const MAX_SAMPLES: u32 = 100;
/// The longest interval, in seconds.
const MAX_INTERVAL: f64 = 60.0;
/// The shortest: below it the readings themselves (milliseconds) dominate.
const MIN_INTERVAL: f64 = 0.05;
/// Locks whose series the summary shows (samples.txt has them all).
const LOCKS_SHOWN: usize = 10;

/// `--samples`: 1 (no comparison, as before) to [`MAX_SAMPLES`].
pub fn parse_samples(text: &str) -> std::result::Result<u32, String> {
    let count: i128 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number of samples"))?;
    match u32::try_from(count) {
        Ok(count) if (1..=MAX_SAMPLES).contains(&count) => Ok(count),
        _ => Err(format!(
            "{count}: give between 1 and {MAX_SAMPLES} samples (for longer, `wazo-astdebug \
             watch` samples for as long as it runs)"
        )),
    }
}

/// `--interval`: seconds between samples, fractions allowed.
pub fn parse_interval(text: &str) -> std::result::Result<f64, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&seconds) {
        return Err(format!(
            "{seconds} s: give between {MIN_INTERVAL} and {MAX_INTERVAL} seconds"
        ));
    }
    Ok(seconds)
}

/// What the sampling gave: the comparison and the words for the summary.
pub struct Sampled {
    pub progress: Progress,
    pub verdict: String,
}

/// Takes `count` samples of `pid`, `interval` apart, compares them, prints
/// each as it comes and the verdict, and saves them as `samples.txt`.
pub fn take(
    context: &Context,
    pid: u32,
    count: u32,
    interval: Duration,
    out: &Path,
    artefacts: &mut Vec<PathBuf>,
    warnings: &mut Warnings,
) -> Result<Sampled> {
    errln!(
        "\nTaking {count} samples of /proc {:.2} s apart (Asterisk is not stopped), to see \
         whether anything moves:",
        interval.as_secs_f64()
    );
    let mut samples: Vec<Snapshot> = Vec::new();
    let progress = match Process::open(pid) {
        Ok(process) => {
            // Read once: the mappings name the locks and do not change
            // while Asterisk is frozen (a module load would be news itself).
            let maps = process.maps();
            let since = Instant::now();
            let mut failed = None;
            for index in 0..count {
                if index > 0 {
                    if let Err(error) = context.interrupt.sleep_until(since + interval * index) {
                        // What was read stays: an interrupted run lists it as saved.
                        let why = format!("interrupted after {} of {count} samples", samples.len());
                        let progress = progress::cannot_tell(&why, &samples);
                        save(&samples, &progress, out, artefacts, warnings);
                        return Err(error);
                    }
                }
                match progress::sample(&process, &maps, since) {
                    Ok(sample) => {
                        errln!("  {}", one_line(index + 1, count, &sample));
                        samples.push(sample);
                    }
                    Err(error) => {
                        failed = Some(error.to_string());
                        break;
                    }
                }
            }
            match failed {
                Some(why) => {
                    warnings.raise(format!(
                        "sample {} of /proc failed: {why}",
                        samples.len() + 1
                    ));
                    progress::cannot_tell(
                        &format!(
                            "sample {} of {count} could not be read ({why}), so the samples \
                             do not span the interval asked for",
                            samples.len() + 1
                        ),
                        &samples,
                    )
                }
                None => progress::compare(&samples),
            }
        }
        Err(error) => progress::cannot_tell(
            &format!(
                "/proc could not be read ({error}); gdb attaches only once, and one look \
                 cannot show progress (stopping Asterisk once per sample is not done)"
            ),
            &samples,
        ),
    };
    save(&samples, &progress, out, artefacts, warnings);
    let verdict = progress::verdict_text(&progress, LOCKS_SHOWN);
    errln!("{}", verdict.trim_end());
    Ok(Sampled { progress, verdict })
}

/// `samples.txt`: a failure to write it is a warning, the verdict stands.
fn save(
    samples: &[Snapshot],
    progress: &Progress,
    out: &Path,
    artefacts: &mut Vec<PathBuf>,
    warnings: &mut Warnings,
) {
    let text = progress::text(samples, progress);
    let path = out.join("samples.txt");
    match create_private(&path).and_then(|mut file| {
        file.write_all(text.as_bytes())
            .map_err(|error| Error::write(&path, error))
    }) {
        Ok(()) => artefacts.push(path),
        Err(error) => warnings.raise(error.to_string()),
    }
}

/// "Sample 2/3 at 1.00 s (read in 1.2 ms): 5 threads waiting for 2 locks".
fn one_line(index: u32, count: u32, sample: &Snapshot) -> String {
    let waiting: std::collections::BTreeSet<u32> = sample
        .locks
        .values()
        .flat_map(|lock| lock.waiters.iter().copied())
        .collect();
    format!(
        "sample {index}/{count} at {:.2} s (read in {:.1} ms): {} of {} threads waiting for {} \
         lock(s)",
        sample.at.as_secs_f64(),
        sample.took.as_secs_f64() * 1000.0,
        waiting.len(),
        sample.threads,
        sample.locks.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_intervals_out_of_range_are_refused() {
        assert_eq!(parse_samples("3"), Ok(3));
        assert!(parse_samples("0").is_err());
        assert!(parse_samples("-1").is_err());
        assert!(parse_samples("1000000000000").is_err());
        assert!(parse_samples("101").is_err());
        assert_eq!(parse_interval("0.5"), Ok(0.5));
        assert!(parse_interval("-1").is_err());
        assert!(parse_interval("0").is_err());
        assert!(parse_interval("NaN").is_err());
        assert!(parse_interval("inf").is_err());
        assert!(parse_interval("1e9").is_err());
    }
}
