//! The lock analysis: who waits for whom, on which lock, and what that means.
//! `dump` reads `core show locks`, `from_gdb` builds the same graph from gdb's
//! view of a process or core (no DEBUG_THREADS needed), `graph` holds it and
//! finds cycles (`scc`), `render` explains it as text, DOT or JSON.

pub mod analysis;
pub mod draw;
pub mod dump;
pub mod file;
pub mod focus;
pub mod from_gdb;
pub mod from_proc;
pub mod graph;
mod hash;
pub mod holders;
pub mod live;
pub mod progress;
pub mod render;
mod scc;
pub mod watch;
