//! The samples and their comparison in words, for `samples.txt` and the
//! summary.

use super::{Course, Progress, Snapshot, arrows, label, lwps, waiting};

/// The samples and the verdict, as `samples.txt` keeps them.
pub fn text(samples: &[Snapshot], progress: &Progress) -> String {
    let mut out = String::new();
    for (i, sample) in samples.iter().enumerate() {
        out.push_str(&format!(
            "Sample {} at {:.2} s (read in {:.1} ms): {} threads, {} waiting for {} lock(s)\n",
            i + 1,
            sample.at.as_secs_f64(),
            sample.took.as_secs_f64() * 1000.0,
            sample.threads,
            waiting(sample),
            sample.locks.len()
        ));
        for (address, lock) in &sample.locks {
            let owner = lock.owner.map_or_else(
                || "holder unknown".to_string(),
                |o| format!("held by LWP {o}"),
            );
            let waiters: Vec<u32> = lock.waiters.iter().copied().collect();
            out.push_str(&format!(
                "  {}: {owner}; {} waiting ({})\n",
                label(&lock.name, address),
                waiters.len(),
                lwps(&waiters)
            ));
        }
    }
    out.push('\n');
    out.push_str(&verdict_text(progress, usize::MAX));
    out
}

/// The verdict, what it rests on, and the series of the `shown` most
/// waited-for locks.
pub fn verdict_text(progress: &Progress, shown: usize) -> String {
    let mut out = format!("Progress between samples: {}.\n", progress.says);
    out.push_str(&format!("  Rests on {}.\n", progress.rests_on));
    for lock in progress.locks.iter().take(shown) {
        let owners = if lock.owners.windows(2).all(|pair| pair[0] == pair[1]) {
            match lock.owners.first().copied().flatten() {
                Some(owner) => format!("held by LWP {owner} throughout"),
                None => "holder unknown throughout".to_string(),
            }
        } else {
            let owners: Vec<String> = lock
                .owners
                .iter()
                .map(|o| o.map_or_else(|| "?".to_string(), |o| o.to_string()))
                .collect();
            format!("holder LWP {}", owners.join(" → "))
        };
        out.push_str(&format!(
            "  {}: {}; {owners}, waiters {}\n",
            label(&lock.name, &lock.address),
            match lock.course {
                Course::Stuck => "stuck",
                Course::Moved => "moved",
                Course::Unclear => "unclear",
            },
            arrows(&lock.waiters)
        ));
    }
    if progress.locks.len() > shown {
        out.push_str(&format!(
            "  … and {} more locks (every one in samples.txt)\n",
            progress.locks.len() - shown
        ));
    }
    for note in &progress.notes {
        out.push_str(&format!("  note: {note}\n"));
    }
    out
}
