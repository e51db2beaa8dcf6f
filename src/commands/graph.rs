//! `wazo-astdebug graph FILE`: the wait-for graph of a saved `core show
//! locks` output, explained in text or drawn for graphviz.
//!
//! It replaces the doc's `graph_ast_locks.py core-show-locks.txt | circo
//! -Tsvg -o graph-locks.svg`, which crashed on waits for unlisted holders
//! and merged locks that share a name. Reading is streamed (`lockdump`) so a
//! dump of any size goes through (`locks::file`); writing creates files mode 0600, as a dump
//! names the calls and peers of a production PBX.

use std::path::{Path, PathBuf};

use crate::context::Context;
use crate::error::Result;
use crate::locks::draw::{GraphFormat, draw, write_output};
use crate::locks::file::{read_dump, source_info};
use crate::locks::render;

#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    /// Saved output of `asterisk -rx "core show locks"` (- for standard input)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Output format [default: text, or json with --json]
    #[arg(short = 'f', long, value_enum, value_name = "FORMAT")]
    pub format: Option<GraphFormat>,

    /// Write to OUT instead of standard output; the global -o OUT does the same (a directory gets
    /// graph-locks.<ext>). svg/png default: graph-locks.svg/.png in the current directory
    #[arg(long, value_name = "OUT")]
    pub output: Option<PathBuf>,
}

pub fn run(context: &Context, args: &GraphArgs) -> Result<()> {
    let format = args.format.unwrap_or(if context.opts.json {
        GraphFormat::Json
    } else {
        GraphFormat::Text
    });
    let output = output_path(args, format, context.opts.output_dir.as_deref());
    let (mut graph, info) = read_dump(&args.file)?;
    if context.dry_run() {
        // Standard output writes no file; a file is shown, not written.
        let target =
            match format {
                GraphFormat::Svg | GraphFormat::Png => Some(output.clone().unwrap_or_else(|| {
                    PathBuf::from(format!("graph-locks.{}", format.extension()))
                })),
                _ => output.clone(),
            };
        if let Some(target) = target {
            print_script(&args.file, format, &target);
            return Ok(());
        }
    }
    // Nothing is looked up or added from here on.
    graph.drop_lookups();
    let analysis = graph.analyze();

    let result = match format {
        GraphFormat::Text => {
            let source = source_info(&args.file, &info);
            let text = render::text(&graph, &analysis, &source);
            write_output(output.as_deref(), |out| out.write_all(text.as_bytes()))
        }
        GraphFormat::Dot => {
            write_output(output.as_deref(), |out| render::dot(&graph, &analysis, out))
        }
        GraphFormat::Json => {
            // What the text format prints as notes: in JSON, its warnings.
            let notes = source_info(&args.file, &info).notes;
            write_output(output.as_deref(), |out| {
                render::json_warned(&graph, &analysis, &notes, out)
            })
        }
        GraphFormat::Svg | GraphFormat::Png => {
            let target = output
                .unwrap_or_else(|| PathBuf::from(format!("graph-locks.{}", format.extension())));
            draw(&graph, &analysis, format, &target)
        }
    };
    // Freeing a 100,000-thread graph one string at a time costs a tenth of
    // the run, and the process ends right after: let the OS reclaim it.
    std::mem::forget(graph);
    std::mem::forget(analysis);
    result
}

/// `--dry-run` with a file to write: the script that writes it.
fn print_script(file: &Path, format: GraphFormat, target: &Path) {
    use clap::ValueEnum;
    let quote = |path: &Path| crate::engine::shell::quote(&path.to_string_lossy());
    let name = format
        .to_possible_value()
        .map(|value| value.get_name().to_string())
        .unwrap_or_default();
    outln!("#!/bin/sh");
    outln!("# wazo-astdebug graph --dry-run: this run wrote nothing; this writes the file.");
    outln!("set -e");
    if let Some(parent) = target
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        outln!("mkdir -p {}", quote(parent));
    }
    outln!(
        "wazo-astdebug graph {} -f {name} --output {}",
        quote(file),
        quote(target)
    );
}

/// `--output`, else the global `-o`: a directory gets `graph-locks.<ext>`,
/// anything else is taken as the file to write (so `graph x -o a.svg` works
/// even though `-o` is the global output-directory option).
fn output_path(args: &GraphArgs, format: GraphFormat, global: Option<&Path>) -> Option<PathBuf> {
    // --output and -o mean the same: a directory gets graph-locks.<ext>.
    let path = args.output.as_deref().or(global)?;
    let as_dir = path.is_dir() || path.as_os_str().to_string_lossy().ends_with('/');
    Some(if as_dir {
        path.join(format!("graph-locks.{}", format.extension()))
    } else {
        path.to_path_buf()
    })
}
