//! What is read off a broken server and what is packed for the bug tracker:
//! kernel segfault lines and their scan over rotated logs, Asterisk's own log,
//! core files and their ELF notes, freeze symptoms, the bug report, redaction
//! and valgrind's report.

pub mod astlog;
pub mod binary;
pub mod bugreport;
pub mod cores;
pub mod elf;
pub mod mask;
pub mod redact;
pub mod segfault_line;
pub mod segfault_scan;
pub mod symptoms;
pub mod syslog;
pub mod taskprocessors;
pub mod thread_log;
pub mod valgrind_report;
