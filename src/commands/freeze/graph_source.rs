//! Which reading of the locks the answer rests on: `core show locks` when
//! the build has it, else gdb's reading of memory.

use std::path::Path;

use crate::gdb::Target;
use crate::gdb::threads;
use crate::locks::file as lockfile;
use crate::locks::from_gdb;
use crate::locks::graph::LockGraph;
use crate::locks::render;
use crate::output::Warnings;

/// The graph from `core show locks` when the build has it (it knows every
/// lock held, not only the contended ones), else from gdb.
pub fn choose_graph(
    dump: Option<&Path>,
    analysis: Option<&threads::Analysis>,
    target: &Target,
    warnings: &mut Warnings,
) -> (LockGraph, String, render::SourceInfo) {
    if let Some(path) = dump {
        match lockfile::read_dump(path) {
            Ok((graph, info)) => {
                let info = lockfile::source_info(path, &info);
                return (graph, "core show locks".to_string(), info);
            }
            Err(error) => {
                warnings.raise(format!("{error}; using gdb's reading of the locks instead"))
            }
        }
    }
    let source = match target {
        Target::Pid(pid) => format!("gdb, attached to pid {pid}"),
        Target::Core(core) => format!("gdb, on {}", core.display()),
    };
    let built = analysis.map(from_gdb::build);
    let info = render::SourceInfo {
        source: source.clone(),
        unlisted_why: Some(from_gdb::UNLISTED_WHY.to_string()),
        ..Default::default()
    };
    match built {
        Some(built) => {
            let info = from_gdb::source_info(&built, &built.graph.analyze(), &source);
            (built.graph, source, info)
        }
        None => (LockGraph::new(), "none".to_string(), info),
    }
}
