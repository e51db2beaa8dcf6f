//! The graph as JSON, written directly: no document is built in memory
//! first (on a 100,000-thread dump with five locks a thread, serde's tree of
//! borrowed structs and one `Vec` per lock cost more than the graph itself).
//! The bytes are those serde_json writes for the same document (compact,
//! same field order, same escapes); `reference` keeps the serde version to
//! prove it.

use std::io::{self, Write};

use crate::locks::graph::{Addr, Analysis, Claim, LockGraph, Site, ThreadRef};

/// Which claims go in a lock's list (`holders`, `waiters`, `tried_and_failed`).
type ClaimFilter = fn(Claim) -> bool;

/// Written to `out` in pieces this big.
const CHUNK: usize = 64 * 1024;

struct Out<'a> {
    buffer: Vec<u8>,
    out: &'a mut dyn Write,
}

/// The pieces of a record only append to the buffer; [`Out::flush`], once a
/// record, writes it out when it is full (a check per field was a tenth of
/// the run).
impl Out<'_> {
    fn flush(&mut self) -> io::Result<()> {
        if self.buffer.len() >= CHUNK {
            self.out.write_all(&self.buffer)?;
            self.buffer.clear();
        }
        Ok(())
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// A JSON string, escaped as serde_json escapes it. Real dumps need no
    /// escape at all: the text is scanned for the bytes that do and copied in
    /// runs between them.
    fn text(&mut self, text: &str) {
        self.text_bytes(text.as_bytes());
    }

    /// [`Out::text`] of a `str`'s bytes: thread ids are read so, without
    /// checking them as UTF-8 again at every use (a twentieth of the run).
    fn text_bytes(&mut self, bytes: &[u8]) {
        // No early exit, so the check runs a vector at a time; nearly every
        // string passes it and is copied in one piece.
        let plain = !bytes.iter().fold(false, |dirty, &b| {
            dirty | (b < 0x20) | (b == b'"') | (b == b'\\')
        });
        if plain {
            self.buffer.reserve(bytes.len() + 2);
            self.buffer.push(b'"');
            self.buffer.extend_from_slice(bytes);
            self.buffer.push(b'"');
            return;
        }
        self.buffer.reserve(bytes.len() + 2);
        self.buffer.push(b'"');
        let mut start = 0;
        while let Some(offset) = bytes.get(start..).and_then(|rest| {
            rest.iter()
                .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
        }) {
            let at = start + offset;
            self.buffer
                .extend_from_slice(bytes.get(start..at).unwrap_or(&[]));
            let byte = bytes.get(at).copied().unwrap_or(0);
            let escape: &[u8] = match byte {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0x08 => b"\\b",
                0x0c => b"\\f",
                _ => b"",
            };
            if escape.is_empty() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                self.buffer.extend_from_slice(b"\\u00");
                self.buffer.push(HEX[usize::from(byte >> 4)]);
                self.buffer.push(HEX[usize::from(byte & 0xf)]);
            } else {
                self.buffer.extend_from_slice(escape);
            }
            start = at + 1;
        }
        self.buffer
            .extend_from_slice(bytes.get(start..).unwrap_or(&[]));
        self.buffer.push(b'"');
    }

    /// [`Out::text`] as the writer's tests call it.
    #[cfg(test)]
    fn string(&mut self, text: &str) -> io::Result<()> {
        self.text(text);
        Ok(())
    }

    fn number(&mut self, value: Option<u64>) {
        match value {
            Some(value) => {
                let mut digits = itoa_buffer();
                let text = format_u64(value, &mut digits);
                self.raw(text);
            }
            None => self.raw(b"null"),
        }
    }

    fn boolean(&mut self, value: bool) {
        self.raw(if value { b"true" } else { b"false" });
    }

    /// A lock address: what `%p` printed is hex digits, written as they are
    /// made (a `String` or a scan for escapes per lock and edge cost a tenth
    /// of the run); anything else is a string.
    fn addr(&mut self, addr: &Addr) {
        match addr.as_value() {
            Some(value) => {
                // Made on the stack and copied once: a push a digit checked
                // the buffer's room twelve times an address.
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let mut quoted = *b"\"0x0000000000000000\"";
                let mut at = quoted.len() - 1;
                let mut rest = value;
                loop {
                    at -= 1;
                    if let Some(slot) = quoted.get_mut(at) {
                        *slot = HEX[(rest & 0xf) as usize];
                    }
                    rest >>= 4;
                    if rest == 0 || at <= 3 {
                        break;
                    }
                }
                let start = at - 3;
                if let Some(prefix) = quoted.get_mut(start..at) {
                    prefix.copy_from_slice(b"\"0x");
                }
                self.buffer
                    .extend_from_slice(quoted.get(start..).unwrap_or(&[]));
            }
            None => addr.with_str(|text| self.text(text)),
        }
    }

    fn site(&mut self, site: &Site) {
        self.raw(b"\"file\":");
        self.text(&site.file);
        self.raw(b",\"line\":");
        self.number(site.line.map(u64::from));
        self.raw(b",\"func\":");
        self.text(&site.func);
    }
}

fn itoa_buffer() -> [u8; 20] {
    [0; 20]
}

fn format_u64(mut value: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut at = digits.len();
    loop {
        at -= 1;
        if let Some(slot) = digits.get_mut(at) {
            *slot = b'0' + (value % 10) as u8;
        }
        value /= 10;
        if value == 0 || at == 0 {
            break;
        }
    }
    digits.get(at..).unwrap_or(&[])
}

/// The whole graph as one compact JSON document and a newline, with no
/// warnings (`docs/json.md`, "graph").
pub fn json(graph: &LockGraph, analysis: &Analysis, out: &mut dyn Write) -> io::Result<()> {
    json_warned(graph, analysis, &[], out)
}

/// [`json`], with what reading the dump warned about.
pub fn json_warned(
    graph: &LockGraph,
    analysis: &Analysis,
    warnings: &[String],
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut w = Out {
        buffer: Vec::with_capacity(CHUNK + 4096),
        out,
    };
    let id = |thread: ThreadRef| graph.thread(thread).map_or(&[][..], |t| t.id.as_bytes());
    w.raw(b"{");
    w.raw(b"\"schema\":");
    w.raw(crate::output::JSON_SCHEMA.to_string().as_bytes());
    w.raw(b",\"threads\":");
    w.raw(b"[");
    for (index, t) in graph.threads().iter().enumerate() {
        w.raw(if index == 0 { b"{" } else { b",{" });
        w.raw(b"\"id\":");
        w.text_bytes(t.id.as_bytes());
        w.raw(b",\"lwp\":");
        w.number(t.lwp);
        w.raw(b",\"name\":");
        w.text(&t.name);
        w.raw(b",\"start\":");
        w.text(t.short_name());
        w.raw(b",\"in_cycle\":");
        w.boolean(analysis.in_cycle.get(index).copied().unwrap_or(false));
        w.raw(b",\"blocked_on_cycle\":");
        w.boolean(
            analysis
                .blocked_on_cycle
                .get(index)
                .copied()
                .unwrap_or(false),
        );
        w.raw(b"}");
        w.flush()?;
    }
    w.raw(b"]");

    // Each lock's claims, in the order they were recorded: the acquisitions
    // sorted by lock (a counting sort, four bytes per acquisition).
    let locks = graph.locks();
    let acquisitions = graph.acquisitions();
    let mut starts = vec![0u32; locks.len() + 1];
    for acq in acquisitions {
        if let Some(count) = starts.get_mut(acq.lock.index() + 1) {
            *count += 1;
        }
    }
    for at in 1..starts.len() {
        let before = starts.get(at - 1).copied().unwrap_or(0);
        if let Some(slot) = starts.get_mut(at) {
            *slot += before;
        }
    }
    // The starts are the fill's cursors (a copy of them was four bytes a
    // lock more at the peak): each ends where the next lock's list begins,
    // so lock i's list is then ends[i - 1]..ends[i].
    let mut by_lock = vec![0u32; acquisitions.len()];
    for (index, acq) in acquisitions.iter().enumerate() {
        if let Some(slot) = starts.get_mut(acq.lock.index()) {
            if let Some(target) = by_lock.get_mut(*slot as usize) {
                *target = index as u32;
            }
            *slot += 1;
        }
    }
    let ends = starts;
    w.raw(b",\"locks\":");
    w.raw(b"[");
    for (index, lock) in locks.iter().enumerate() {
        w.raw(if index == 0 { b"{" } else { b",{" });
        w.raw(b"\"addr\":");
        w.addr(&lock.addr);
        w.raw(b",\"name\":");
        w.text(&lock.name);
        let from = match index {
            0 => 0,
            _ => ends.get(index - 1).copied().unwrap_or(0) as usize,
        };
        let to = ends.get(index).copied().unwrap_or(0) as usize;
        let claims = by_lock.get(from..to).unwrap_or(&[]);
        let lists: [(&[u8], ClaimFilter); 3] = [
            (b",\"holders\":[", |c| {
                matches!(c, Claim::Holds | Claim::ProbablyHolds)
            }),
            (b",\"waiters\":[", |c| c == Claim::WaitsFor),
            (b",\"tried_and_failed\":[", |c| c == Claim::TriedAndFailed),
        ];
        for (opening, wanted) in lists {
            w.raw(opening);
            let mut first = true;
            for acq in claims
                .iter()
                .filter_map(|&at| acquisitions.get(at as usize))
            {
                if !wanted(acq.claim) {
                    continue;
                }
                w.raw(if std::mem::take(&mut first) {
                    b"{"
                } else {
                    b",{"
                });
                w.raw(b"\"thread\":");
                w.text_bytes(id(acq.thread));
                w.raw(b",\"kind\":");
                w.text(acq.kind.as_str());
                w.raw(b",\"file\":");
                w.text(&acq.site.file);
                w.raw(b",\"line\":");
                w.number(acq.site.line.map(u64::from));
                w.raw(b",\"func\":");
                w.text(&acq.site.func);
                if !acq.locked_here.is_empty() {
                    w.raw(b",\"locked_here\":");
                    w.raw(b"[");
                    for (at, site) in acq.locked_here.iter().enumerate() {
                        w.raw(if at == 0 { b"{" } else { b",{" });
                        w.site(site);
                        w.raw(b"}");
                    }
                    w.raw(b"]");
                }
                w.raw(b"}");
                w.flush()?;
            }
            w.raw(b"]");
        }
        w.raw(b"}");
        w.flush()?;
    }
    w.raw(b"]");
    drop(by_lock);
    drop(ends);

    w.raw(b",\"edges\":");
    w.raw(b"[");
    for (index, e) in analysis.edges.iter().enumerate() {
        let lock = graph.lock(e.lock);
        w.raw(if index == 0 { b"{" } else { b",{" });
        w.raw(b"\"waiter\":");
        w.text_bytes(id(e.waiter));
        w.raw(b",\"holder\":");
        match e.holder {
            Some(holder) => w.text_bytes(id(holder)),
            None => w.raw(b"null"),
        }
        w.raw(b",\"lock\":");
        match lock {
            Some(lock) => w.addr(&lock.addr),
            None => w.text(""),
        }
        w.raw(b",\"lock_name\":");
        w.text(lock.map(|l| &*l.name).unwrap_or(""));
        w.raw(b",\"in_cycle\":");
        w.boolean(analysis.edge_in_cycle(e));
        if e.probable {
            w.raw(b",\"probable\":");
            w.boolean(true);
        }
        w.raw(b"}");
        w.flush()?;
    }
    w.raw(b"]");

    w.raw(b",\"cycles\":");
    w.raw(b"[");
    for (index, deadlock) in analysis.deadlocks.iter().enumerate() {
        w.raw(if index == 0 { b"[" } else { b",[" });
        for (at, step) in deadlock.cycle.iter().enumerate() {
            if at > 0 {
                w.raw(b",");
            }
            w.text_bytes(id(step.thread));
            w.flush()?;
        }
        w.raw(b"]");
    }
    w.raw(b"]");
    w.raw(b",\"possible\":");
    w.raw(b"[");
    for (index, deadlock) in analysis.deadlocks.iter().enumerate() {
        if index > 0 {
            w.raw(b",");
        }
        w.boolean(deadlock.possible);
    }
    w.raw(b"]");
    w.raw(b",\"blocked_on_cycles\":");
    w.raw(b"[");
    let mut first = true;
    for (index, blocked) in analysis.blocked_on_cycle.iter().enumerate() {
        let Some(t) = graph.threads().get(index).filter(|_| *blocked) else {
            continue;
        };
        if !std::mem::take(&mut first) {
            w.raw(b",");
        }
        w.text_bytes(t.id.as_bytes());
        w.flush()?;
    }
    w.raw(b"]");
    w.raw(b",\"warnings\":");
    w.raw(b"[");
    for (index, warning) in warnings.iter().enumerate() {
        if index > 0 {
            w.raw(b",");
        }
        w.text(warning);
    }
    w.raw(b"]}\n");
    let Out { buffer, out } = w;
    out.write_all(&buffer)
}

/// The serde version this writer replaced, kept to prove the bytes equal.
#[cfg(test)]
pub(super) mod reference {
    use std::io::{self, Write};

    use serde::Serialize;

    use crate::locks::graph::{Analysis, Claim, LockGraph, Site, ThreadRef};

    #[derive(Serialize)]
    struct JsonThread<'a> {
        id: &'a str,
        lwp: Option<u64>,
        name: &'a str,
        start: &'a str,
        in_cycle: bool,
        blocked_on_cycle: bool,
    }

    #[derive(Serialize)]
    struct JsonClaim<'a> {
        thread: &'a str,
        kind: &'static str,
        file: &'a str,
        line: Option<u32>,
        func: &'a str,
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        locked_here: &'a [Site],
    }

    #[derive(Serialize)]
    struct JsonLock<'a> {
        addr: String,
        name: &'a str,
        holders: Vec<JsonClaim<'a>>,
        waiters: Vec<JsonClaim<'a>>,
        tried_and_failed: Vec<JsonClaim<'a>>,
    }

    #[derive(Serialize)]
    struct JsonEdge<'a> {
        waiter: &'a str,
        /// `null`: the holder is not listed in the dump.
        holder: Option<&'a str>,
        lock: String,
        lock_name: &'a str,
        in_cycle: bool,
        /// The holder is inferred (an rwlock reader glibc does not record).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        probable: bool,
    }

    #[derive(Serialize)]
    struct JsonGraph<'a> {
        schema: u32,
        threads: Vec<JsonThread<'a>>,
        locks: Vec<JsonLock<'a>>,
        edges: Vec<JsonEdge<'a>>,
        cycles: Vec<Vec<&'a str>>,
        /// Per cycle: it goes through an inferred rwlock reader.
        possible: Vec<bool>,
        blocked_on_cycles: Vec<&'a str>,
        warnings: Vec<&'a str>,
    }

    pub fn json_serde(
        graph: &LockGraph,
        analysis: &Analysis,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let id = |thread: ThreadRef| graph.thread(thread).map(|t| &*t.id).unwrap_or("");
        let threads = graph
            .threads()
            .iter()
            .enumerate()
            .map(|(index, t)| JsonThread {
                id: &t.id,
                lwp: t.lwp,
                name: &t.name,
                start: t.short_name(),
                in_cycle: analysis.in_cycle.get(index).copied().unwrap_or(false),
                blocked_on_cycle: analysis
                    .blocked_on_cycle
                    .get(index)
                    .copied()
                    .unwrap_or(false),
            })
            .collect();
        let mut locks: Vec<JsonLock> = graph
            .locks()
            .iter()
            .map(|l| JsonLock {
                addr: l.addr.to_string(),
                name: &l.name,
                holders: Vec::new(),
                waiters: Vec::new(),
                tried_and_failed: Vec::new(),
            })
            .collect();
        for acq in graph.acquisitions() {
            let Some(lock) = locks.get_mut(acq.lock.index()) else {
                continue;
            };
            let claim = JsonClaim {
                thread: id(acq.thread),
                kind: acq.kind.as_str(),
                file: &acq.site.file,
                line: acq.site.line,
                func: &acq.site.func,
                locked_here: &acq.locked_here,
            };
            match acq.claim {
                Claim::Holds | Claim::ProbablyHolds => lock.holders.push(claim),
                Claim::WaitsFor => lock.waiters.push(claim),
                Claim::TriedAndFailed => lock.tried_and_failed.push(claim),
            }
        }
        let edges = analysis
            .edges
            .iter()
            .map(|e| {
                let lock = graph.lock(e.lock);
                JsonEdge {
                    waiter: id(e.waiter),
                    holder: e.holder.map(id),
                    lock: lock.map(|l| l.addr.to_string()).unwrap_or_default(),
                    lock_name: lock.map(|l| &*l.name).unwrap_or(""),
                    in_cycle: analysis.edge_in_cycle(e),
                    probable: e.probable,
                }
            })
            .collect();
        let cycles = analysis
            .deadlocks
            .iter()
            .map(|d| d.cycle.iter().map(|s| id(s.thread)).collect())
            .collect();
        let possible = analysis.deadlocks.iter().map(|d| d.possible).collect();
        let blocked_on_cycles = analysis
            .blocked_on_cycle
            .iter()
            .enumerate()
            .filter(|(_, blocked)| **blocked)
            .filter_map(|(index, _)| graph.threads().get(index).map(|t| &*t.id))
            .collect();
        let document = JsonGraph {
            schema: crate::output::JSON_SCHEMA,
            threads,
            locks,
            edges,
            cycles,
            possible,
            blocked_on_cycles,
            warnings: Vec::new(),
        };
        // Compact: a 100,000-thread graph is for programs, and pretty-printing
        // doubled its size and time.
        serde_json::to_writer(&mut *out, &document)?;
        writeln!(out)
    }
}

#[cfg(test)]
mod tests;
