//! Reading a valgrind memcheck log (`valgrind.txt`) into what a developer
//! asks first: which kinds of errors, how much leaked, and where.
//!
//! A night's run of Asterisk under valgrind yields thousands of lines, most
//! of them "possibly lost" noise because Asterisk does not unload its
//! modules when stopped with Ctrl-C. The summary puts the errors that mean
//! memory corruption (invalid reads and writes, uninitialised values,
//! invalid frees) before the leaks, and the biggest leaks before the rest.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

static PREFIX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^==\d+== ?(.*)$").expect("a valid regex"));
static LOSS_RECORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([\d,]+)(?: \([^)]*\))? bytes in ([\d,]+) blocks are (definitely lost|indirectly lost|possibly lost|still reachable) in loss record")
        .expect("a valid regex")
});
static LEAK_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(definitely lost|indirectly lost|possibly lost|still reachable|suppressed): ([\d,]+) bytes in ([\d,]+) blocks")
        .expect("a valid regex")
});
static ERROR_SUMMARY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^ERROR SUMMARY: ([\d,]+) errors? from ([\d,]+) contexts?").expect("a valid regex")
});
static FRAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*(?:at|by) 0x[0-9A-Fa-f]+: (.*)$").expect("a valid regex"));

/// Bytes and blocks of one leak category.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Amount {
    pub bytes: u64,
    pub blocks: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LeakSummary {
    pub definitely_lost: Amount,
    pub indirectly_lost: Amount,
    pub possibly_lost: Amount,
    pub still_reachable: Amount,
    pub suppressed: Amount,
}

/// One error context or loss record, with its first stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: String,
    /// The line valgrind printed, e.g. "Invalid read of size 4".
    pub title: String,
    pub stack: Vec<String>,
    /// For loss records: the bytes lost.
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Error contexts by kind, most frequent first (in JSON, `{kind, count}` objects).
    #[serde(serialize_with = "kind_counts")]
    pub errors_by_kind: Vec<(String, usize)>,
    pub errors: Vec<Finding>,
    pub leaks: Vec<Finding>,
    pub leak_summary: Option<LeakSummary>,
    /// "ERROR SUMMARY: N errors from M contexts" (in JSON, `{errors, contexts}`).
    #[serde(serialize_with = "error_summary")]
    pub error_summary: Option<(u64, u64)>,
}

// Objects, not pairs: a JSON reader gets names, as everywhere else (docs/json.md).
fn kind_counts<S: serde::Serializer>(
    kinds: &[(String, usize)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct KindCount<'a> {
        kind: &'a str,
        count: usize,
    }
    serializer.collect_seq(kinds.iter().map(|(kind, count)| KindCount {
        kind,
        count: *count,
    }))
}

fn error_summary<S: serde::Serializer>(
    summary: &Option<(u64, u64)>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct ErrorSummary {
        errors: u64,
        contexts: u64,
    }
    summary
        .map(|(errors, contexts)| ErrorSummary { errors, contexts })
        .serialize(serializer)
}

fn number(text: &str) -> u64 {
    text.replace(',', "").parse().unwrap_or(0)
}

/// The kind of an error block, from its first line; `None` for blocks that
/// are not errors (headers, summaries).
fn error_kind(title: &str) -> Option<&'static str> {
    let kinds: [(&str, &str); 10] = [
        ("Invalid read", "Invalid read"),
        ("Invalid write", "Invalid write"),
        ("Invalid free", "Invalid free"),
        ("Mismatched free", "Mismatched free/delete"),
        (
            "Conditional jump or move depends on uninitialised",
            "Use of uninitialised value",
        ),
        ("Use of uninitialised value", "Use of uninitialised value"),
        (
            "Syscall param",
            "Uninitialised or unaddressable syscall parameter",
        ),
        (
            "Source and destination overlap",
            "Overlapping source and destination",
        ),
        ("Argument 'size' of function", "Fishy allocation size"),
        ("Invalid ", "Invalid access"),
    ];
    kinds
        .iter()
        .find(|(prefix, _)| title.starts_with(prefix))
        .map(|(_, kind)| *kind)
}

pub fn parse(log: &str) -> Report {
    let mut report = Report::default();
    let mut block: Vec<String> = Vec::new();
    let mut blocks = Vec::new();
    for line in log.lines() {
        let Some(captures) = PREFIX.captures(line) else {
            continue;
        };
        let text = captures.get(1).map_or("", |m| m.as_str());
        if text.trim().is_empty() {
            if !block.is_empty() {
                blocks.push(std::mem::take(&mut block));
            }
        } else {
            block.push(text.to_string());
        }
    }
    if !block.is_empty() {
        blocks.push(block);
    }
    for block in blocks {
        // It shares its block with "For lists of detected and suppressed errors...".
        if let Some(captures) = block
            .iter()
            .find_map(|line| ERROR_SUMMARY.captures(line.trim()))
        {
            report.error_summary = Some((number(&captures[1]), number(&captures[2])));
            continue;
        }
        let title = block[0].trim().to_string();
        let stack: Vec<String> = block[1..]
            .iter()
            .take_while(|line| FRAME.is_match(line))
            .filter_map(|line| FRAME.captures(line).map(|c| c[1].to_string()))
            .collect();
        if let Some(captures) = LOSS_RECORD.captures(&title) {
            report.leaks.push(Finding {
                kind: captures[3].to_string(),
                title: title.clone(),
                stack,
                bytes: number(&captures[1]),
            });
        } else if title.starts_with("LEAK SUMMARY") {
            let mut summary = LeakSummary::default();
            for line in &block[1..] {
                if let Some(captures) = LEAK_LINE.captures(line) {
                    let amount = Amount {
                        bytes: number(&captures[2]),
                        blocks: number(&captures[3]),
                    };
                    match &captures[1] {
                        "definitely lost" => summary.definitely_lost = amount,
                        "indirectly lost" => summary.indirectly_lost = amount,
                        "possibly lost" => summary.possibly_lost = amount,
                        "still reachable" => summary.still_reachable = amount,
                        _ => summary.suppressed = amount,
                    }
                }
            }
            report.leak_summary = Some(summary);
        } else if title.starts_with("All heap blocks were freed") {
            report.leak_summary = Some(LeakSummary::default());
        } else if let Some(kind) = error_kind(&title) {
            report.errors.push(Finding {
                kind: kind.to_string(),
                title,
                stack,
                bytes: 0,
            });
        }
    }
    for finding in &report.errors {
        match report
            .errors_by_kind
            .iter_mut()
            .find(|(kind, _)| kind == &finding.kind)
        {
            Some((_, count)) => *count += 1,
            None => report.errors_by_kind.push((finding.kind.clone(), 1)),
        }
    }
    report
        .errors_by_kind
        .sort_by_key(|entry| std::cmp::Reverse(entry.1));
    report
        .leaks
        .sort_by_key(|leak| std::cmp::Reverse(leak.bytes));
    report
}

/// The report as text for the terminal.
pub fn render(report: &Report, top: usize) -> String {
    let mut out = String::new();
    match report.error_summary {
        Some((errors, contexts)) => out.push_str(&format!(
            "Errors: {errors} from {contexts} contexts (valgrind's ERROR SUMMARY)\n"
        )),
        None => out.push_str(
            "Errors: no ERROR SUMMARY in the log (valgrind was killed before it finished?)\n",
        ),
    }
    for (kind, count) in &report.errors_by_kind {
        out.push_str(&format!("  {count:>5}  {kind}\n"));
    }
    match &report.leak_summary {
        Some(summary) => {
            out.push_str("Leaks:\n");
            for (label, amount) in [
                ("definitely lost", summary.definitely_lost),
                ("indirectly lost", summary.indirectly_lost),
                ("possibly lost", summary.possibly_lost),
                ("still reachable", summary.still_reachable),
                ("suppressed", summary.suppressed),
            ] {
                out.push_str(&format!(
                    "  {label:<16} {} bytes in {} blocks\n",
                    amount.bytes, amount.blocks
                ));
            }
            out.push_str(
                "  (\"possibly lost\" is noisy: Asterisk does not unload its modules when stopped \
                 with Ctrl-C; unload a suspect module with `module unload` before stopping it)\n",
            );
        }
        None => out.push_str("Leaks: no LEAK SUMMARY in the log\n"),
    }
    let findings: Vec<&Finding> = report
        .errors
        .iter()
        .chain(&report.leaks)
        .take(top)
        .collect();
    if !findings.is_empty() {
        out.push_str("Top stacks:\n");
    }
    for (index, finding) in findings.iter().enumerate() {
        out.push_str(&format!("  {}. {}\n", index + 1, finding.title));
        for frame in finding.stack.iter().take(6) {
            out.push_str(&format!("       {frame}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "==4242== Memcheck, a memory error detector
==4242== Command: ./leak
==4242== 
==4242== Invalid read of size 4
==4242==    at 0x1091D2: main (leak.c:31)
==4242==  Address 0x4a8a040 is 0 bytes inside a block of size 16 free'd
==4242==    at 0x484317B: free (vg_replace_malloc.c:872)
==4242==    by 0x1091CD: main (leak.c:30)
==4242== 
==4242== Conditional jump or move depends on uninitialised value(s)
==4242==    at 0x1091E0: main (leak.c:33)
==4242== 
==4242== HEAP SUMMARY:
==4242==     in use at exit: 1,088 bytes in 2 blocks
==4242== 
==4242== 64 bytes in 1 blocks are definitely lost in loss record 1 of 2
==4242==    at 0x4840808: malloc (vg_replace_malloc.c:442)
==4242==    by 0x109189: leak (leak.c:17)
==4242==    by 0x1091F0: main (leak.c:35)
==4242== 
==4242== 1,024 (64 direct, 960 indirect) bytes in 1 blocks are definitely lost in loss record 2 of 2
==4242==    at 0x4840808: malloc (vg_replace_malloc.c:442)
==4242== 
==4242== LEAK SUMMARY:
==4242==    definitely lost: 128 bytes in 2 blocks
==4242==    indirectly lost: 960 bytes in 1 blocks
==4242==      possibly lost: 0 bytes in 0 blocks
==4242==    still reachable: 0 bytes in 0 blocks
==4242==         suppressed: 0 bytes in 0 blocks
==4242== 
==4242== For lists of detected and suppressed errors, rerun with: -s
==4242== ERROR SUMMARY: 4 errors from 4 contexts (suppressed: 0 from 0)
";

    #[test]
    fn errors_leaks_and_stacks_are_counted() {
        let report = parse(LOG);
        assert_eq!(
            report.errors_by_kind,
            [
                ("Invalid read".to_string(), 1),
                ("Use of uninitialised value".to_string(), 1)
            ]
        );
        assert_eq!(report.errors[0].stack, ["main (leak.c:31)"]);
        let summary = report.leak_summary.clone().unwrap();
        assert_eq!(
            summary.definitely_lost,
            Amount {
                bytes: 128,
                blocks: 2
            }
        );
        assert_eq!(
            summary.indirectly_lost,
            Amount {
                bytes: 960,
                blocks: 1
            }
        );
        assert_eq!(report.error_summary, Some((4, 4)));
        assert_eq!(report.leaks[0].bytes, 1024);
        assert_eq!(report.leaks[1].stack[1], "leak (leak.c:17)");
        let text = render(&report, 10);
        assert!(
            text.contains("definitely lost  128 bytes in 2 blocks"),
            "{text}"
        );
        assert!(
            text.contains("1. Invalid read of size 4\n       main (leak.c:31)"),
            "{text}"
        );
    }

    #[test]
    fn an_empty_or_cut_log_says_so() {
        let report = parse("garbage\n==1== Memcheck\n");
        assert!(report.errors.is_empty() && report.leak_summary.is_none());
        assert!(render(&report, 5).contains("no ERROR SUMMARY"));
        let report = parse("==1== All heap blocks were freed -- no leaks are possible\n");
        assert_eq!(report.leak_summary, Some(LeakSummary::default()));
    }
}
