# wazo-astdebug: which file each address of Asterisk is in, read with gdb.
#
# Part of the lock script: written after gdb_locks.py into the one file gdb
# sources (`-ix`), sharing its namespace. Kept apart only to keep each file
# readable.

import bisect
import struct

import gdb


class Mappings(object):
    """Which file each address is in, and at what offset from its load base.

    A production server has no debug symbols: most frames are `??`. The
    shared object and the offset still say where (`res_foo.so+0x1229`), and
    `addr2line -e <file> 0x1229` turns them into a line where symbols exist.
    Read once from `info proc mappings`, which works on a live process and on
    a core (its NT_FILE note).
    """

    def __init__(self):
        self.starts = []
        self.spans = []
        bases = {}
        for start, end, offset, path in self.read():
            base = start - offset
            if path not in bases or base < bases[path]:
                bases[path] = base
            self.spans.append((start, end, path))
        self.spans.sort()
        self.starts = [span[0] for span in self.spans]
        self.bases = bases

    @staticmethod
    def read():
        """(start, end, offset, path) of each mapping of a file."""
        if globals().get("wazo_astdebug_detach", False):
            # Live: the kernel's own list, read in a quarter of the time gdb
            # takes to print it (a thousand threads' stacks are 2000 lines).
            try:
                with open("/proc/%d/maps" % gdb.selected_inferior().pid) as maps:
                    lines = maps.read().splitlines()
                spans = []
                for line in lines:
                    words = line.split(None, 5)
                    if len(words) == 6 and words[5].startswith("/"):
                        start, end = words[0].split("-")
                        spans.append((int(start, 16), int(end, 16), int(words[2], 16), words[5]))
                return spans
            except (IOError, OSError, ValueError):
                pass
        try:
            text = gdb.execute("info proc mappings", to_string=True)
        except Exception:
            text = ""
        spans = []
        for line in text.splitlines():
            words = line.split()
            if len(words) < 5 or not words[0].startswith("0x") or not words[-1].startswith("/"):
                continue
            try:
                spans.append((int(words[0], 16), int(words[1], 16), int(words[3], 16), words[-1]))
            except ValueError:
                continue
        return spans

    def locate(self, pc):
        """(file, offset from its load base), or (None, None)."""
        at = bisect.bisect_right(self.starts, pc) - 1
        if at < 0:
            return None, None
        start, end, path = self.spans[at]
        if pc >= end:
            return None, None
        return path, pc - self.bases.get(path, 0)


def program_headers(source):
    """(ELF header, program header table) of the 64-bit little-endian ELF
    file open as `source`, its entries 56 bytes each; ValueError if it is
    not one (or numbers them the extended way, in section 0: not read)."""
    header = source.read(64)
    if header[:4] != b"\x7fELF" or header[4:6] != b"\x02\x01":
        raise ValueError("not a 64-bit little-endian ELF file")
    phoff, = struct.unpack_from("<Q", header, 32)
    entsize, count = struct.unpack_from("<HH", header, 54)
    if entsize != 56 or count == 0xFFFF:
        raise ValueError("program headers not read")
    source.seek(phoff)
    return header, source.read(56 * count)


class Anonymous(object):
    """The memory of a core that no file backs, from its PT_LOAD headers.

    A core's `info proc mappings` (its NT_FILE note) lists the files only;
    the program headers list every mapping. One that no file covers is
    heap, a stack or anonymous memory, unless it starts where a file's
    mapping ends: the tail of that file's .bss, which a symbol may name.
    """

    def __init__(self, core=None, mappings=None):
        self.starts = []
        self.ends = []
        if not core or mappings is None:
            return
        ends = set(span[1] for span in mappings.spans)
        segments = []
        try:
            with open(core, "rb") as source:
                _, table = program_headers(source)
        except (IOError, OSError, ValueError, struct.error):
            return
        for at in range(0, len(table) - 55, 56):
            kind, = struct.unpack_from("<I", table, at)
            vaddr, = struct.unpack_from("<Q", table, at + 16)
            memsz, = struct.unpack_from("<Q", table, at + 40)
            if kind != 1 or vaddr in ends or mappings.locate(vaddr)[0] is not None:
                continue
            segments.append((vaddr, vaddr + memsz))
        segments.sort()
        self.starts = [start for start, _ in segments]
        self.ends = [end for _, end in segments]

    def holds(self, address):
        at = bisect.bisect_right(self.starts, address) - 1
        return at >= 0 and address < self.ends[at]


MAPPINGS = None
ANONYMOUS = Anonymous()
