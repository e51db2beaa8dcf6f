//! What a freeze run gathers, and the CLI questions that gather part of it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::evidence::symptoms::{self, CliAnswer, Symptom};
use crate::evidence::taskprocessors::{self, Listing};
use crate::host::sys::create_private;
use crate::host::version;
use crate::output::Warnings;

/// What a run gathered: files written, checks made, warnings raised.
#[derive(Default)]
pub struct Evidence {
    pub artefacts: Vec<PathBuf>,
    pub symptoms: Vec<Symptom>,
    pub warnings: Warnings,
    /// `core show locks`, when this build has it.
    pub locks_dump: Option<PathBuf>,
    /// The core `--gcore` took: never an attachment, it stays on the server.
    pub core: Option<PathBuf>,
    /// The /proc reading's graph, as JSON.
    pub proc_graph: Option<serde_json::Value>,
    /// The Wazo version, looked for once gdb has let go (never while Asterisk is stopped).
    pub version: Option<version::Pending>,
    /// How long gdb held Asterisk, attach to detach.
    pub stopped: Option<Duration>,
    /// The shared objects gdb read the symbols of, of those mapped.
    pub symbols_read: Option<crate::gdb::threads::Solibs>,
    /// `core show taskprocessors`, parsed.
    pub taskprocessors: Listing,
}

impl Evidence {
    /// `service asterisk status`, `core show channels`, `core show locks` and
    /// `core show taskprocessors`, each bounded by `timeout`; the answers are
    /// saved as artefacts.
    pub fn check_symptoms(
        &mut self,
        context: &Context,
        timeout: Duration,
        out: &Path,
    ) -> Result<()> {
        let evidence = self;
        evidence
            .symptoms
            .push(symptoms::service_status(timeout, &context.interrupt)?);
        let channels = symptoms::asterisk_rx("core show channels", timeout, &context.interrupt)?;
        save_answer(
            &channels,
            &out.join("core-show-channels.txt"),
            &mut evidence.artefacts,
        )?;
        evidence
            .symptoms
            .push(symptoms::judge_channels(&channels, timeout));
        if let CliAnswer::Timeout = channels {
            evidence.warnings.raise(
                "the `core show channels` that did not answer leaves one CLI thread of Asterisk \
                 blocked on the same lock until Asterisk restarts (each run that asks adds one)",
            );
        }
        let locks = symptoms::asterisk_rx("core show locks", timeout, &context.interrupt)?;
        match &locks {
            CliAnswer::Output(lines) if symptoms::lacks_debug_threads(lines) => evidence.warnings.raise(
                "this Asterisk is built without DEBUG_THREADS, so `core show locks` does not exist; \
                 the lock graph comes from gdb instead. For the full picture, rebuild with \
                 `wazo-astdebug rebuild` (DEBUG_THREADS, DONT_OPTIMIZE) and catch the next freeze",
            ),
            CliAnswer::Output(_) => {
                let path = out.join("core-show-locks.txt");
                save_answer(&locks, &path, &mut evidence.artefacts)?;
                evidence.locks_dump = Some(path);
            }
            CliAnswer::Timeout => evidence.warnings.raise(format!(
                "`asterisk -rx 'core show locks'` did not answer within {} s",
                timeout.as_secs()
            )),
            CliAnswer::Failed(why) => evidence
                .warnings
                .raise(format!("`asterisk -rx 'core show locks'` failed: {why}")),
        }
        let listing =
            symptoms::asterisk_rx("core show taskprocessors", timeout, &context.interrupt)?;
        save_answer(
            &listing,
            &out.join("core-show-taskprocessors.txt"),
            &mut evidence.artefacts,
        )?;
        evidence.taskprocessors = match listing {
            CliAnswer::Output(lines) => match taskprocessors::parse_table(&lines) {
                Ok(table) => Listing::Listed(table),
                Err(why) => Listing::Unanswered(why),
            },
            CliAnswer::Timeout => {
                Listing::Unanswered(format!("no answer within {} s", timeout.as_secs()))
            }
            CliAnswer::Failed(why) => Listing::Unanswered(format!("failed: {why}")),
        };
        if let Listing::Unanswered(why) = &evidence.taskprocessors {
            evidence.warnings.raise(format!(
                "`asterisk -rx 'core show taskprocessors'`: {why}; the taskprocessors are \
                 named from the log alone"
            ));
        }
        for symptom in &evidence.symptoms {
            errln!(
                "{:<9} {:<7} {}",
                symptom.check,
                symptom.verdict,
                symptom.detail
            );
        }
        Ok(())
    }
}

fn save_answer(answer: &CliAnswer, path: &Path, artefacts: &mut Vec<PathBuf>) -> Result<()> {
    if let CliAnswer::Output(lines) = answer {
        let mut file = create_private(path)?;
        for line in lines {
            writeln!(file, "{line}").map_err(|error| Error::write(path, error))?;
        }
        artefacts.push(path.to_path_buf());
    }
    Ok(())
}
