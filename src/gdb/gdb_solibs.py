
# Shared libraries' symbols, read only for the libraries the backtraces
# need (`wazo_astdebug_lazy = True`, gdb started with `set auto-solib-add
# off`), on a live process and on a core.
#
# A Wazo Asterisk maps about 470 shared libraries (its 360-odd modules and
# what they link). gdb reads the symbols of every one of them once it has
# attached, about a millisecond each, while every thread of the PBX is
# stopped: on the test bed's Asterisk with every module loaded, 0.5 s of
# bare gdb's 0.75 s stop. Its threads' frames are in about ten of them. gdb
# still reads the list of libraries and loads libc's symbols by itself (its
# thread support needs them); the rest are loaded here by gdb's own
# `sharedlibrary` command, so a frame reads exactly as bare gdb would print
# it: same unwinding, same names, same "from" line.
#
# Which ones: each thread's backtrace is taken first as text. A frame in a
# library whose symbols gdb lacks prints `?? () from LIB`, and an argument
# pointing into one a bare address where bare gdb would add `<symbol>`:
# those libraries are loaded and the thread's backtrace taken again, until
# it asks for none (a frame in a library without symbols may have been
# unwound wrongly, and what followed it with it). Reading the text costs
# nothing gdb was not doing anyway; walking the frames from Python to find
# them cost a fifth of a millisecond a thread. `bt full` prints locals too,
# structs and arrays: any bare address in the text counts.
#
# On a core, gdb prints the first thread's innermost frame as it loads the
# core, before any script runs: the library that frame is in is read first,
# from the core's own notes (`preload_first_frame`), so that line too is
# bare gdb's. A lock's `info symbol` reads the library the lock is in.

import os

# Backtraces of one thread taken again before giving up and loading every
# library.
SOLIB_TRIES = 16

SOLIBS = None

# A frame's line ending with the library it is in (`#3  0x7f.. in ?? () from
# /usr/lib/x86_64-linux-gnu/asterisk/modules/res_pjsip.so`).
FRAME_FROM = re.compile(r"^#\d+ .* from (/[^\"\n]*)$", re.M)
# An argument `bt` prints as a bare address (`cb=0x7f3a10c2b149)`): where it
# points into a library with symbols, bare gdb adds `<module_callback>`.
# Locals and struct fields print the same way, at the end of a line or
# before `}`: whatever the text shows as a bare address. One inside a word
# (`a0x1)`) is taken too: it costs at most a library read for nothing, where
# telling it apart in Python cost a call per match (a lookbehind made
# Python's re try it at every byte).
BARE_POINTER = re.compile(r"0x[0-9a-f]+(?=[,)}]|$)", re.M)


def bare_pointers(text):
    """The bare addresses `text` shows, as a set of `0x...` strings."""
    return set(BARE_POINTER.findall(text))


def backtrace_frames(text):
    """A backtrace's text from its first frame on, without the thread's
    header (`Thread N (... (LWP n) "name"):`); None when it has no frame."""
    start = text.find("\n#")
    return text[start:] if start >= 0 else None


class Solibs(object):
    """Which shared libraries gdb has the symbols of, and loading more."""

    def __init__(self):
        self.loaded = set()
        self.paths = {}
        self.names = {}
        self.everything = False
        # Backtrace texts (past their thread's header) that needed no library.
        self.enough = set()
        # Bare addresses already looked up (`for_text`).
        self.pointers = set()
        for objfile in gdb.objfiles():
            if objfile.filename:
                self.loaded.add(self.real(objfile.filename))

    def real(self, name):
        path = self.paths.get(name)
        if path is None:
            path = self.paths[name] = os.path.realpath(name)
        return path

    def lacks(self, name):
        return name is not None and self.real(name) not in self.loaded

    def pointed(self, address):
        """The library holding `address`, or None."""
        name = self.names.get(address, False)
        if name is False:
            name = self.names[address] = gdb.solib_name(address)
        return name

    def load(self, name):
        # One try per library: a file gdb cannot read is not tried again.
        self.loaded.add(self.real(name))
        gdb.execute("sharedlibrary ^%s$" % basic_regex_escape(name), to_string=True)

    def load_all(self):
        """gdb's own automatic loading, as bare gdb does it: the fallback."""
        if not self.everything:
            self.everything = True
            gdb.execute("sharedlibrary", to_string=True)
            gdb.invalidate_cached_frames()

    def for_text(self, text):
        """Loads the libraries the backtrace `text` shows are missing;
        whether it loaded any (the backtrace is then to be taken again)."""
        if self.everything:
            return False
        # The literal first: most backtraces have no frame without symbols,
        # and the regex's `.*` costs on every line.
        froms = FRAME_FROM.findall(text) if " from /" in text else []
        wanted = [name for name in froms if self.lacks(name)]
        # Each address once: a thousand threads' locals point at the same
        # few objects, and what a library it is in lacks is read below.
        values = bare_pointers(text)
        values.difference_update(self.pointers)
        self.pointers.update(values)
        for value in values:
            name = self.pointed(int(value, 16))
            if self.lacks(name):
                wanted.append(name)
        for name in wanted:
            if self.lacks(name):
                self.load(name)
        if wanted:
            gdb.invalidate_cached_frames()
        return bool(wanted)

    def backtrace(self, command):
        """`command`'s text once every library it needs is read; never raises
        but what gdb raises for the command itself."""
        try:
            text = gdb.execute(command, to_string=True)
            for _ in range(SOLIB_TRIES):
                # A thread's frames as another's before it (idle threads
                # stand in a few stacks): nothing more to read for them.
                frames = backtrace_frames(text)
                if frames is not None and frames in self.enough:
                    return text
                if not self.for_text(text):
                    if frames is not None:
                        self.enough.add(frames)
                    return text
                text = gdb.execute(command, to_string=True)
        except Exception as error:
            gdb.write("lazy symbols: %s: every library loaded\n" % error, gdb.STDERR)
        self.load_all()
        return gdb.execute(command, to_string=True)


def solibs_need(address):
    """Reads the library `address` is in, if gdb lacks its symbols (for
    `info symbol` on a core)."""
    if SOLIBS is None or SOLIBS.everything:
        return
    try:
        name = SOLIBS.pointed(address)
        if SOLIBS.lacks(name):
            SOLIBS.load(name)
    except Exception as error:
        gdb.write("lazy symbols: %s: every library loaded\n" % error, gdb.STDERR)
        SOLIBS.load_all()


def wazo_astdebug_prepare(commands):
    """Reads what the doc's commands run before the script (crash's `bt
    full` of the crashing thread) print, before gdb prints them."""
    solibs_start()
    if SOLIBS is not None:
        for command in commands:
            SOLIBS.backtrace(command)


# NT_FILE: the files a core maps, as the kernel and gcore write them.
NT_PRSTATUS = 1
NT_FILE = 0x46494C45
# x86-64's elf_prstatus: pr_reg after 112 bytes, rip its 17th register.
PRSTATUS_RIP = 112 + 16 * 8
# Notes are read up to this much (a core of 20,000 threads has 7 MiB).
MAX_NOTES = 64 << 20


def core_notes(core):
    """(type, desc) of each note of a 64-bit little-endian x86-64 core."""
    with open(core, "rb") as source:
        header, table = program_headers(source)
        kind, machine = struct.unpack_from("<HH", header, 16)
        if kind != 4 or machine != 62:
            raise ValueError("not an x86-64 core")
        for at in range(0, len(table) - 55, 56):
            ptype, = struct.unpack_from("<I", table, at)
            if ptype != 4:  # PT_NOTE
                continue
            offset, = struct.unpack_from("<Q", table, at + 8)
            size, = struct.unpack_from("<Q", table, at + 32)
            source.seek(offset)
            data = source.read(min(size, MAX_NOTES))
            place = 0
            while place + 12 <= len(data):
                namesz, descsz, ntype = struct.unpack_from("<III", data, place)
                start = place + 12 + ((namesz + 3) & ~3)
                yield ntype, data[start:start + descsz]
                place = start + ((descsz + 3) & ~3)


def first_frame_file(core):
    """(path, load base) of the file the core's first thread's pc is in
    (the thread gdb selects), or None."""
    pc = None
    spans = None
    for ntype, desc in core_notes(core):
        if ntype == NT_PRSTATUS and pc is None and len(desc) >= PRSTATUS_RIP + 8:
            pc, = struct.unpack_from("<Q", desc, PRSTATUS_RIP)
        elif ntype == NT_FILE and spans is None:
            count, page = struct.unpack_from("<QQ", desc, 0)
            names = desc[16 + 24 * count:].split(b"\0")
            spans = []
            for index in range(min(count, len(names))):
                start, end, offset = struct.unpack_from("<QQQ", desc, 16 + 24 * index)
                spans.append((start, end, start - offset * page, names[index].decode("utf-8", "replace")))
        if pc is not None and spans is not None:
            break
    if pc is None or spans is None:
        raise ValueError("no thread or no file list in the core's notes")
    path = None
    for start, end, _, name in spans:
        if start <= pc < end:
            path = name
    if path is None:
        return None
    return path, min(base for _, _, base, name in spans if name == path)


def interpreted(path):
    """Whether the ELF file at `path` is an executable (the program gdb was
    given), not a library to read here: it names a program interpreter, or
    it is not position-independent (ET_EXEC). A static program has no
    interpreter, and gdb 13 aborts on a second copy of its symbols
    (`get_msymbol_address: Assertion ... OBJF_MAINLINE`)."""
    with open(path, "rb") as source:
        header, table = program_headers(source)
    if struct.unpack_from("<H", header, 16)[0] == 2:  # ET_EXEC
        return True
    return any(struct.unpack_from("<I", table, at)[0] == 3  # PT_INTERP
               for at in range(0, len(table) - 55, 56))


# Libraries gdb reads with `auto-solib-add` off all the same (its thread
# support needs them): one of them read twice would name its frames twice.
GDB_READS_ANYWAY = re.compile(r"/(libc\.|libpthread|ld-linux)")


def preload_first_frame(core):
    """Reads, before gdb loads `core`, the library of the frame it prints
    first. Raises when the core cannot be read that way."""
    found = first_frame_file(core)
    if found is None:
        return
    path, base = found
    if GDB_READS_ANYWAY.search(path) or interpreted(path):
        return
    gdb.execute("add-symbol-file %s -o 0x%x" % (path, base), to_string=True)


def basic_regex_escape(text):
    """`text` as a POSIX basic regular expression (gdb's `sharedlibrary`)
    matching only itself: `+`, `?`, `(` are plain characters there, and a
    backslash before them would make them operators (a GNU extension)."""
    return "".join("\\" + c if c in ".[]*^$\\" else c for c in text)


def solibs_start():
    """With lazy loading, what gdb has read by itself once attached."""
    global SOLIBS
    if globals().get("wazo_astdebug_lazy", False) and SOLIBS is None:
        SOLIBS = Solibs()


SHARED_OBJECT = re.compile(r"\.so(\.[0-9.]+)?$")


def solibs_read(mappings):
    """For the JSON: how many shared objects are mapped, and how many of them
    gdb has the symbols of (those the backtraces need, and libc, which gdb
    reads by itself). None without lazy loading."""
    if SOLIBS is None:
        return None
    mapped = set()
    if mappings is not None:
        mapped = set(SOLIBS.real(path) for path in mappings.bases if SHARED_OBJECT.search(path))
    read = set(SOLIBS.real(objfile.filename) for objfile in gdb.objfiles() if objfile.filename)
    return {"read": len(read & mapped), "mapped": len(mapped), "all": SOLIBS.everything}


if globals().get("wazo_astdebug_lazy", False) and globals().get("wazo_astdebug_core"):
    try:
        preload_first_frame(wazo_astdebug_core)  # noqa: F821 (set by the caller)
    except Exception as error:
        # As bare gdb: every library read.
        gdb.write("lazy symbols: %s: every library loaded\n" % error, gdb.STDERR)
        gdb.execute("set auto-solib-add on")
        wazo_astdebug_lazy = False
