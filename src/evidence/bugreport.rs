//! `bug-report.md`: the tracker fields the doc asks for, filled in.
//!
//! The doc lists what a Wazo bug report needs (Tracker: Bug, Status: New,
//! Category: Asterisk, the version, a subject, a description with the date
//! and time, the files). Writing it from what was just collected means the
//! report is right the first time, and it carries the doc's warning about
//! the core file next to the list of what to attach.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::host::sys::create_private;

/// What goes into a bug report.
#[derive(Debug, Default)]
pub struct BugReport {
    /// `Asterisk Crash` or `Asterisk Freeze`.
    pub subject: String,
    pub version: String,
    /// The installed Asterisk (see `host::asterisk::installed_version`).
    pub asterisk: Option<String>,
    pub incident: String,
    /// Findings, one Markdown paragraph or list each.
    pub findings: Vec<String>,
    /// File name and what it is.
    pub attachments: Vec<(String, String)>,
    /// Core files that must not be attached publicly.
    pub cores: Vec<String>,
}

impl BugReport {
    pub fn render(&self) -> String {
        let mut out = format!("# {}\n\n", self.subject);
        for (field, value) in [
            ("Tracker", "Bug"),
            ("Status", "New"),
            ("Category", "Asterisk"),
            ("In versions", self.version.as_str()),
            ("Asterisk", self.asterisk.as_deref().unwrap_or("unknown")),
            ("Subject", self.subject.as_str()),
        ] {
            out.push_str(&format!("- **{field}:** {value}\n"));
        }
        out.push_str("\n## Description\n\n");
        out.push_str(&format!(
            "Date and time of the incident: {}\n\n",
            self.incident
        ));
        out.push_str(
            "What was happening (calls, transfers, queues, a scenario that leads to the issue): \
             _please describe_\n\n",
        );
        for finding in &self.findings {
            out.push_str(finding.trim_end());
            out.push_str("\n\n");
        }
        out.push_str("## Attached files\n\n");
        if self.attachments.is_empty() {
            out.push_str("(none)\n");
        }
        for (name, what) in &self.attachments {
            out.push_str(&format!("- `{name}`: {what}\n"));
        }
        out.push_str(
            "\nSave the issue first, then edit it and attach the files to a comment. \
             `wazo-astdebug report` packs them into one tarball with passwords and secrets \
             redacted and no core file.\n\n",
        );
        out.push_str(
            "**DO NOT attach the core file publicly!** It may contain sensitive information \
             like passwords and should only be shared with people you trust.",
        );
        if !self.cores.is_empty() {
            out.push_str(&format!(
                " It stays on the server: `{}`.",
                self.cores.join("`, `")
            ));
        }
        out.push('\n');
        out
    }

    /// Writes the report, mode 0600.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut file = create_private(path)?;
        file.write_all(self.render().as_bytes())
            .map_err(|error| Error::write(path, error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_the_docs_fields_and_warning() {
        let report = BugReport {
            subject: "Asterisk Crash".to_string(),
            version: "25.15".to_string(),
            asterisk: Some("22.10.1 (asterisk 8:22.10.1-1)".to_string()),
            incident: "2026-11-28 04:12:43 +01:00".to_string(),
            findings: vec!["Signal: SIGSEGV".to_string()],
            attachments: vec![("bt-threads.txt".to_string(), "gdb backtrace".to_string())],
            cores: vec!["/var/spool/asterisk/core.1.2".to_string()],
        };
        let text = report.render();
        for needle in [
            "- **Tracker:** Bug",
            "- **Status:** New",
            "- **Category:** Asterisk",
            "- **In versions:** 25.15",
            "- **Subject:** Asterisk Crash",
            "2026-11-28 04:12:43",
            "`bt-threads.txt`",
            "DO NOT attach the core file publicly",
            "/var/spool/asterisk/core.1.2",
        ] {
            assert!(text.contains(needle), "{needle} missing in:\n{text}");
        }
    }
}
