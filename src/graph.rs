//! `wazo-astdebug graph FILE`: the wait-for graph of a saved `core show
//! locks` output, explained in text or drawn for graphviz.
//!
//! It replaces the doc's `graph_ast_locks.py core-show-locks.txt | circo
//! -Tsvg -o graph-locks.svg`, which crashed on waits for unlisted holders
//! and merged locks that share a name. Reading is streamed (`lockdump`) so a
//! dump of any size goes through; writing creates files mode 0600, as a dump
//! names the calls and peers of a production PBX.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::context::{self, Context};
use crate::error::{Error, Result};
use crate::lockdump::{self, DumpInfo};
use crate::lockgraph::LockGraph;
use crate::lockgraph::render::{self, SourceInfo};

/// Big enough that the per-line work, not the reads, sets the pace.
const READ_BUFFER: usize = 1 << 20;

/// Above this many threads circo gets slow enough to deserve a warning.
const LARGE_DRAWING: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// Explain the deadlocks and who is stuck behind them
    Text,
    /// Graphviz source: pipe it to `circo -Tsvg -o graph-locks.svg`
    Dot,
    /// SVG drawn by graphviz's circo
    Svg,
    /// PNG drawn by graphviz's circo
    Png,
    /// Threads, locks, edges, cycles, for scripts
    Json,
}

impl GraphFormat {
    fn extension(self) -> &'static str {
        match self {
            GraphFormat::Text => "txt",
            GraphFormat::Dot => "dot",
            GraphFormat::Svg => "svg",
            GraphFormat::Png => "png",
            GraphFormat::Json => "json",
        }
    }
}

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
    let (graph, info) = read_dump(&args.file)?;
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
        GraphFormat::Json => write_output(output.as_deref(), |out| {
            render::json(&graph, &analysis, out)
        }),
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

/// `--output`, else the global `-o`: a directory gets `graph-locks.<ext>`,
/// anything else is taken as the file to write (so `graph x -o a.svg` works
/// even though `-o` is the global output-directory option).
fn output_path(args: &GraphArgs, format: GraphFormat, global: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = &args.output {
        return Some(path.clone());
    }
    let path = global?;
    let as_dir = path.is_dir() || path.as_os_str().to_string_lossy().ends_with('/');
    Some(if as_dir {
        path.join(format!("graph-locks.{}", format.extension()))
    } else {
        path.to_path_buf()
    })
}

/// Reads and parses FILE (or stdin), refusing what is not a lock dump.
pub fn read_dump(path: &Path) -> Result<(LockGraph, DumpInfo)> {
    if path == Path::new("-") {
        let stdin = io::stdin();
        let (graph, info) = parse_reader(stdin.lock(), path)?;
        return check(graph, info, "standard input");
    }
    let metadata = std::fs::metadata(path).map_err(|source| Error::read(path, source))?;
    if metadata.is_dir() {
        return Err(Error::bad_input(format!(
            "{} is a directory; give the file holding the output of \
             `asterisk -rx \"core show locks\"`",
            path.display()
        )));
    }
    let file = File::open(path).map_err(|source| Error::read(path, source))?;
    let (graph, info) = parse_reader(file, path)?;
    check(graph, info, &path.display().to_string())
}

fn parse_reader(input: impl Read, path: &Path) -> Result<(LockGraph, DumpInfo)> {
    let mut reader = BufReader::with_capacity(READ_BUFFER, input);
    let magic = {
        use std::io::BufRead;
        let buffer = reader
            .fill_buf()
            .map_err(|source| Error::read(path, source))?;
        buffer.get(..4).map(<[u8]>::to_vec).unwrap_or_default()
    };
    let name = if path == Path::new("-") {
        "standard input".to_string()
    } else {
        path.display().to_string()
    };
    if magic.starts_with(b"\x7fELF") {
        return Err(Error::bad_input(format!(
            "{name} is an ELF file (a core dump?), not a saved `core show locks` output; \
             save one with `asterisk -rx \"core show locks\" > core-show-locks.txt`"
        )));
    }
    if magic.starts_with(b"\x1f\x8b") {
        return Err(Error::bad_input(format!(
            "{name} is gzip-compressed; decompress it first (`zcat {name} | wazo-astdebug graph -`)"
        )));
    }
    lockdump::parse(reader).map_err(|source| Error::read(path, source))
}

fn check(graph: LockGraph, info: DumpInfo, name: &str) -> Result<(LockGraph, DumpInfo)> {
    if !info.recognized {
        let what = if info.lines == 0 {
            "is empty"
        } else {
            "holds no `core show locks` output (no `=== Thread ID:` nor `Currently Held Locks` line)"
        };
        return Err(Error::bad_input(format!(
            "{name} {what}; save one with `asterisk -rx \"core show locks\" > core-show-locks.txt` \
             (the command exists only in an Asterisk built with DEBUG_THREADS)"
        )));
    }
    Ok((graph, info))
}

pub fn source_info(path: &Path, info: &DumpInfo) -> SourceInfo {
    let mut notes = Vec::new();
    if info.dumps > 1 {
        notes.push(format!(
            "the file holds {} dumps; only the last one is analysed",
            info.dumps
        ));
    }
    if info.unreadable_lock_lines > 0 {
        notes.push(format!(
            "{} not be read (cut or mangled) and skipped",
            count(
                info.unreadable_lock_lines,
                "lock line could",
                "lock lines could"
            )
        ));
    }
    if info.orphan_lock_lines > 0 {
        notes.push(format!(
            "{} before any thread line (the paste starts mid-thread) and skipped",
            count(info.orphan_lock_lines, "lock line came", "lock lines came")
        ));
    }
    if info.cuts > 0 {
        notes.push("the paste has `...` cuts: threads or locks may be missing".to_string());
    }
    if info.suspended > 0 {
        notes.push(format!(
            "{} (released inside a condition wait), not counted as held",
            count(info.suspended, "lock was suspended", "locks were suspended")
        ));
    }
    SourceInfo {
        source: if path == Path::new("-") {
            "standard input".to_string()
        } else {
            path.display().to_string()
        },
        version: info.version.clone(),
        taken_at: info.taken_at.clone(),
        notes,
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn write_output(
    path: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    match path {
        None => {
            let stdout = io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            let result = write(&mut out).and_then(|()| out.flush());
            match result {
                // `graph x | head` is fine.
                Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
                other => other.map_err(|source| Error::write("standard output", source)),
            }
        }
        Some(path) => {
            let file = create_output(path)?;
            let mut out = BufWriter::new(file);
            write(&mut out)
                .and_then(|()| out.flush())
                .map_err(|source| Error::write(path, source))?;
            errln!("wrote {}", path.display());
            Ok(())
        }
    }
}

/// Creates (or truncates) an output file, readable by its owner only: the
/// mode given at creation does not apply to a file that already exists.
fn create_output(path: &Path) -> Result<File> {
    use std::os::unix::fs::PermissionsExt;
    let file = context::create_private(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|source| Error::write(path, source))?;
    Ok(file)
}

/// Draws with circo; without graphviz, leaves the `.dot` next to the
/// requested file so the work is not lost, and says how to finish.
pub fn draw(
    graph: &LockGraph,
    analysis: &crate::lockgraph::Analysis,
    format: GraphFormat,
    target: &Path,
) -> Result<()> {
    let mut dot = Vec::new();
    render::dot(graph, analysis, &mut dot).map_err(|source| Error::write(target, source))?;
    let circo = match which::which("circo") {
        Ok(circo) => circo,
        Err(_) => {
            let dot_path = target.with_extension("dot");
            write_output(Some(&dot_path), |out| out.write_all(&dot))?;
            return Err(Error::MissingTool {
                program: "circo".to_string(),
                hint: format!(
                    "install graphviz (`apt-get install graphviz`), or draw it elsewhere: \
                     the graph was written to {} (`circo -T{} -o {} {}`)",
                    dot_path.display(),
                    format.extension(),
                    target.display(),
                    dot_path.display()
                ),
            });
        }
    };
    if graph.threads().len() > LARGE_DRAWING {
        errln!(
            "note: {} threads; circo may take minutes on a graph this size (-f text or -f json are instant)",
            graph.threads().len()
        );
    }
    let file = create_output(target)?;
    let command = format!("{} -T{}", circo.display(), format.extension());
    let mut child = Command::new(&circo)
        .arg(format!("-T{}", format.extension()))
        .stdin(Stdio::piped())
        .stdout(Stdio::from(file))
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|source| Error::Spawn {
            command: command.clone(),
            source,
        })?;
    let fed = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(&dot))
        .unwrap_or(Ok(()));
    let status = child.wait().map_err(|source| Error::Spawn {
        command: command.clone(),
        source,
    })?;
    if !status.success() || fed.is_err() {
        // A half-written picture would pass for the real one.
        let _ = std::fs::remove_file(target);
        let dot_path = target.with_extension("dot");
        let _ = write_output(Some(&dot_path), |out| out.write_all(&dot));
        return Err(Error::StepFailed {
            command,
            status: status.to_string(),
            hint: format!("; the graph source was kept in {}", dot_path.display()),
        });
    }
    errln!("wrote {}", target.display());
    Ok(())
}
