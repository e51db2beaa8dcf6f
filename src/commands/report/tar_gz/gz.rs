//! The bundle's gzip stream, made so that a file is redacted on one core
//! and compressed on the other, with no uncompressed copy staged on disk.
//!
//! A tar header gives the size of the content it precedes, and redaction
//! changes the size: the content cannot go into the archive's stream as
//! it is redacted. So it is compressed on its own ([`Apart`], on a thread
//! fed by a bounded channel, into a scratch file), and once it is done
//! its header is written and the compressed bytes are copied in after it.
//! Deflate allows this, as pigz uses it: a stream ended by a full flush
//! stops on a byte boundary and nothing after it refers back past it, so
//! streams compressed apart follow each other as one stream, and the CRC
//! of the whole is combined from theirs. The bundle stays one ordinary
//! gzip member, which every reader (`tar xzf`, a single-member decoder)
//! takes.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// What redaction hands to the compressing thread at a time: large enough
/// that the channel costs nothing next to deflate, small enough that the
/// chunks in flight stay a few MB whatever the file's size.
const CHUNK: usize = 1 << 16;
/// Chunks in flight: redaction runs ahead of deflate by this much at most
/// (1 MiB), enough that neither waits for the other when the scheduler
/// runs them by turns on a busy machine.
const IN_FLIGHT: usize = 16;

/// The level `gzip` and `tar czf` use by default.
fn level() -> Compression {
    Compression::new(6)
}

/// Raw deflate (no zlib header: the gzip framing is ours) and the CRC of
/// what went in.
struct Deflater {
    compress: Compress,
    crc: Crc,
    out: Vec<u8>,
}

impl Deflater {
    fn new() -> Deflater {
        Deflater {
            compress: Compress::new(level(), false),
            crc: Crc::new(),
            out: Vec::with_capacity(1 << 16),
        }
    }

    /// Compresses `input` into `sink`; with a flush other than `None`, also
    /// everything still held back, up to a byte boundary.
    fn deflate(
        &mut self,
        mut input: &[u8],
        flush: FlushCompress,
        sink: &mut impl Write,
    ) -> io::Result<()> {
        self.crc.update(input);
        loop {
            self.out.clear();
            let before = self.compress.total_in();
            let status = self
                .compress
                .compress_vec(input, &mut self.out, flush)
                .map_err(io::Error::other)?;
            input = &input[(self.compress.total_in() - before) as usize..];
            sink.write_all(&self.out)?;
            // zlib's rule: a flush is complete once a call leaves room in
            // the output; plain input once it is all taken.
            let full = self.out.len() == self.out.capacity();
            let done = match flush {
                FlushCompress::None => input.is_empty(),
                FlushCompress::Finish => status == Status::StreamEnd,
                _ => input.is_empty() && !full,
            };
            if done {
                return Ok(());
            }
        }
    }
}

/// The archive's own stream: what is written to it is compressed in
/// order, and [`GzWriter::splice`] puts in a file compressed apart.
pub struct GzWriter<W: Write> {
    inner: W,
    deflater: Deflater,
}

impl<W: Write> GzWriter<W> {
    pub fn new(mut inner: W) -> io::Result<GzWriter<W>> {
        // Deflate, no flags, no mtime (the entries carry theirs), Unix.
        inner.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])?;
        Ok(GzWriter {
            inner,
            deflater: Deflater::new(),
        })
    }

    /// Appends the stream `apart` made, after what was written so far.
    pub fn splice(&mut self, apart: Compressed, scratch: &File) -> io::Result<()> {
        // Flushed and reset: what comes after the piece must not refer to
        // what came before it, which the piece now stands between.
        self.deflater
            .deflate(&[], FlushCompress::Full, &mut self.inner)?;
        let mut reader = scratch;
        reader.seek(SeekFrom::Start(0))?;
        let copied = io::copy(&mut reader.take(apart.bytes), &mut self.inner)?;
        if copied != apart.bytes {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the compressed scratch file is shorter than what was written to it",
            ));
        }
        self.deflater.crc.combine(&apart.crc);
        Ok(())
    }

    /// Ends the stream with the gzip trailer; returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.deflater
            .deflate(&[], FlushCompress::Finish, &mut self.inner)?;
        let crc = &self.deflater.crc;
        self.inner.write_all(&crc.sum().to_le_bytes())?;
        // ISIZE is the length modulo 2^32, as gzip defines it.
        self.inner.write_all(&crc.amount().to_le_bytes())?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for GzWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.deflater
            .deflate(buf, FlushCompress::None, &mut self.inner)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A file's content compressed apart: its length in the scratch file, and
/// the CRC (and length) of what went in.
pub struct Compressed {
    bytes: u64,
    crc: Crc,
}

/// Compresses what is written to it on another thread, into `scratch`
/// from its start, so that writing (redaction) and deflate overlap.
pub struct Apart {
    chunks: Option<SyncSender<Vec<u8>>>,
    spare: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    thread: Option<JoinHandle<io::Result<Compressed>>>,
}

impl Apart {
    pub fn new(scratch: &File) -> io::Result<Apart> {
        let mut file = scratch.try_clone()?;
        // What a file before left further on is never read: the splice
        // takes only what this one wrote.
        file.seek(SeekFrom::Start(0))?;
        let (chunks, received) = sync_channel::<Vec<u8>>(IN_FLIGHT);
        // Chunks come back to be filled again, rather than allocated anew.
        let (give_back, spare) = sync_channel(IN_FLIGHT + 1);
        let thread = std::thread::Builder::new()
            .name("report-deflate".into())
            .spawn(move || compress_chunks(received, give_back, file))?;
        Ok(Apart {
            chunks: Some(chunks),
            spare,
            chunk: Vec::with_capacity(CHUNK),
            thread: Some(thread),
        })
    }

    fn send(&mut self) -> io::Result<()> {
        let fresh = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.chunk, fresh);
        let sent = self.chunks.as_ref().map(|chunks| chunks.send(full));
        match sent {
            Some(Ok(())) => Ok(()),
            // The thread stopped on an error (a full disk): that error.
            _ => Err(self.join().err().unwrap_or_else(|| {
                io::Error::other("the compressing thread stopped before the end of the file")
            })),
        }
    }

    fn join(&mut self) -> io::Result<Compressed> {
        self.chunks = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the compressing thread panicked")),
            None => Err(io::Error::other("the compressing thread already ended")),
        }
    }

    /// Waits for the end of the compression.
    pub fn finish(mut self) -> io::Result<Compressed> {
        if !self.chunk.is_empty() {
            self.send()?;
        }
        self.join()
    }
}

impl Write for Apart {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.chunk.len().min(CHUNK);
        let taken = buf.len().min(room.max(1));
        self.chunk.extend_from_slice(&buf[..taken]);
        if self.chunk.len() >= CHUNK {
            self.send()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Chunks go when full or at the end: a flush in between (redaction
        // flushes at the end of each stream) needs nothing.
        Ok(())
    }
}

impl Drop for Apart {
    fn drop(&mut self) {
        // An error or Ctrl-C: the thread ends with the channel, and is
        // waited for so that it never outlives the scratch file's use.
        if self.thread.is_some() {
            let _ = self.join();
        }
    }
}

fn compress_chunks(
    chunks: Receiver<Vec<u8>>,
    give_back: SyncSender<Vec<u8>>,
    file: File,
) -> io::Result<Compressed> {
    let mut out = Counter {
        inner: BufWriter::with_capacity(1 << 16, file),
        bytes: 0,
    };
    let mut deflater = Deflater::new();
    for mut chunk in chunks {
        deflater.deflate(&chunk, FlushCompress::None, &mut out)?;
        chunk.clear();
        let _ = give_back.try_send(chunk);
    }
    deflater.deflate(&[], FlushCompress::Full, &mut out)?;
    out.inner.flush()?;
    Ok(Compressed {
        bytes: out.bytes,
        crc: deflater.crc,
    })
}

struct Counter<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;

    /// Text that compresses with long back-references, so that a splice
    /// that let them cross it would decode wrong.
    fn text(seed: u8, len: usize) -> Vec<u8> {
        (0..len)
            .map(|at| b"abcdefgh"[(at / 7 + seed as usize) % 8] ^ (at % 3 == 0) as u8)
            .collect()
    }

    #[test]
    fn pieces_compressed_apart_make_one_gzip_member() {
        let scratch = tempfile::tempfile().unwrap();
        let mut gz = GzWriter::new(Vec::new()).unwrap();
        let mut expected = Vec::new();
        for (seed, len) in [(0u8, 1000), (1, 0), (2, 3 * CHUNK + 17), (3, 5)] {
            let head = text(seed + 10, 300);
            gz.write_all(&head).unwrap();
            expected.extend_from_slice(&head);
            let mut apart = Apart::new(&scratch).unwrap();
            let content = text(seed, len);
            // Odd-sized writes, as redaction makes them.
            for piece in content.chunks(777) {
                apart.write_all(piece).unwrap();
            }
            let compressed = apart.finish().unwrap();
            gz.splice(compressed, &scratch).unwrap();
            expected.extend_from_slice(&content);
        }
        gz.write_all(b"the end").unwrap();
        expected.extend_from_slice(b"the end");
        let bundle = gz.finish().unwrap();
        // A single-member decoder reads it all, and checks CRC and size.
        let mut decoded = Vec::new();
        GzDecoder::new(&bundle[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded.len(), expected.len());
        assert!(decoded == expected);
    }

    #[test]
    fn a_full_disk_stops_the_writer_with_its_error() {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let mut apart = Apart::new(&full).unwrap();
        let chunk = text(0, CHUNK);
        let error = (0..64)
            .find_map(|_| apart.write_all(&chunk).err())
            .or_else(|| apart.finish().err())
            .unwrap();
        assert_eq!(error.raw_os_error(), Some(libc::ENOSPC), "{error}");
    }
}
