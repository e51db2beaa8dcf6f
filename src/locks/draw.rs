//! Writing a lock graph out: to standard output or a private file (0600: a
//! dump names the calls and peers of a production PBX), or drawn by
//! graphviz's circo, keeping the `.dot` when circo is missing or fails.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::locks::graph::{Analysis, LockGraph};
use crate::locks::render;

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
    pub fn extension(self) -> &'static str {
        match self {
            GraphFormat::Text => "txt",
            GraphFormat::Dot => "dot",
            GraphFormat::Svg => "svg",
            GraphFormat::Png => "png",
            GraphFormat::Json => "json",
        }
    }
}

pub fn write_output(
    path: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    match path {
        None => {
            use std::os::fd::AsFd;
            let stdout = io::stdout();
            let mut lock = stdout.lock();
            // What was printed before comes first.
            let result = lock.flush().and_then(|()| {
                match lock.as_fd().try_clone_to_owned() {
                    // Standard output's own writer is line-buffered: it
                    // searched every 64 KiB piece of a JSON graph for a
                    // newline, a twentieth of the run. The same file, unbuffered.
                    Ok(fd) => {
                        let mut out = BufWriter::new(File::from(fd));
                        write(&mut out).and_then(|()| out.flush())
                    }
                    Err(_) => {
                        let mut out = BufWriter::new(&mut lock);
                        write(&mut out).and_then(|()| out.flush())
                    }
                }
            });
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
    let file = crate::host::sys::create_private(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|source| Error::write(path, source))?;
    Ok(file)
}

/// Draws with circo; without graphviz, leaves the `.dot` next to the
/// requested file so the work is not lost, and says how to finish.
pub fn draw(
    graph: &LockGraph,
    analysis: &Analysis,
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
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn {
            command: command.clone(),
            source,
        })?;
    // Read in a thread: circo may write errors while we still feed it.
    let said = child.stderr.take().map(|mut stderr| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        })
    });
    let fed = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(&dot))
        .unwrap_or(Ok(()));
    let status = child.wait().map_err(|source| Error::Spawn {
        command: command.clone(),
        source,
    })?;
    let said = said
        .and_then(|reader| reader.join().ok())
        .unwrap_or_default();
    if !status.success() || fed.is_err() {
        // A half-written picture would pass for the real one.
        let _ = std::fs::remove_file(target);
        let dot_path = target.with_extension("dot");
        let _ = write_output(Some(&dot_path), |out| out.write_all(&dot));
        return Err(Error::StepFailed {
            command,
            status: status.to_string(),
            hint: format!(
                "{}; the graph source was kept in {}",
                circo_hint(&said),
                dot_path.display()
            ),
        });
    }
    errln!("wrote {}", target.display());
    Ok(())
}

/// What circo's own complaint means for the user.
fn circo_hint(said: &str) -> String {
    let said = said.trim();
    if said.contains("not recognized") || said.contains("Layout type") {
        // Newer Debian splits graphviz's layouts into plugin packages.
        return format!(
            ": {said}. circo's layout is in the package libgvplugin-neato-layout8 on newer \
             Debian (`apt-get install libgvplugin-neato-layout8`)"
        );
    }
    match said.lines().next() {
        Some(first) if !first.is_empty() => format!(": {first}"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_missing_layout_plugin_names_its_package() {
        let hint =
            super::circo_hint("Error: Layout type: \"circo\" not recognized. Use one of: dot\n");
        assert!(hint.contains("libgvplugin-neato-layout8"), "{hint}");
        assert_eq!(super::circo_hint(""), "");
    }
}
