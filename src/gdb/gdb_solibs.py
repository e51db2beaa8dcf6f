
# Shared libraries' symbols, read only for the libraries the threads are in
# (`wazo_astdebug_lazy = True`, a live process, gdb started with
# `set auto-solib-add off`).
#
# A Wazo Asterisk maps about 470 shared libraries (its 360-odd modules and
# what they link). gdb reads the symbols of every one of them once it has
# attached, about a millisecond each, while every thread of the PBX is
# stopped: on the test bed's Asterisk with every module loaded, 0.5 s of
# bare gdb's 0.75 s stop. Its threads' frames are in about ten of them. gdb
# still reads the list of libraries and loads libc's symbols by itself (its
# thread support needs them); the rest are loaded here, each the first time
# a frame is found in it, by gdb's own `sharedlibrary` command, so a frame
# reads exactly as bare gdb would print it: same unwinding, same names, same
# "from" line.
#
# A frame in a library without symbols may be unwound wrongly (no CFI), so
# only the first such frame of a stack counts: its library is loaded and the
# stack is unwound again, until every frame's library has its symbols.

import os

# A stack of more frames than this is looked at no further (gdb's own
# `backtrace` has no limit, but a loop in a corrupt stack must end).
SOLIB_FRAMES = 10000
# Libraries loaded for one thread before giving up and loading every one.
SOLIB_TRIES = 64

SOLIBS = None

# An argument `bt` prints as a bare address (`cb=0x7f3a10c2b149)`): where it
# points into a library with symbols, bare gdb adds `<module_callback>`.
BARE_POINTER = re.compile(r"=(0x[0-9a-f]+)(?=[,)])")


class Solibs(object):
    """Which shared libraries gdb has the symbols of, and loading one more."""

    def __init__(self):
        self.loaded = set()
        self.names = {}
        self.everything = False
        for objfile in gdb.objfiles():
            if objfile.filename:
                self.loaded.add(os.path.realpath(objfile.filename))

    def missing(self, address):
        """The library holding `address` if gdb lacks its symbols, else None."""
        name = self.names.get(address, False)
        if name is False:
            name = gdb.solib_name(address)
            if name is not None and os.path.realpath(name) in self.loaded:
                name = None
            self.names[address] = name
        return name

    def load(self, name):
        # One try per library: a file gdb cannot read is not tried again.
        self.loaded.add(os.path.realpath(name))
        self.names = {}
        gdb.execute("sharedlibrary ^%s$" % basic_regex_escape(name), to_string=True)
        gdb.invalidate_cached_frames()

    def load_all(self):
        """gdb's own automatic loading, as bare gdb does it: the fallback."""
        if not self.everything:
            self.everything = True
            gdb.execute("sharedlibrary", to_string=True)
            gdb.invalidate_cached_frames()

    def first_missing(self):
        """The library of the selected thread's first frame whose symbols gdb lacks."""
        frame = gdb.newest_frame()
        depth = 0
        while frame is not None and depth < SOLIB_FRAMES:
            pc = frame.pc()
            name = self.missing(pc)
            # A caller's line is looked up at pc - 1 (its call may be the last
            # instruction of a library's text).
            if name is None and depth > 0:
                name = self.missing(pc - 1)
            if name is not None:
                return name
            try:
                frame = frame.older()
            except gdb.error:
                return None
            depth += 1
        return None

    def for_pointers(self, text):
        """Loads the libraries the pointer arguments `text` prints without a
        symbol point into; whether it loaded any. Never raises."""
        if self.everything:
            return False
        loaded = False
        try:
            for value in BARE_POINTER.findall(text):
                name = self.missing(int(value, 16))
                if name is not None:
                    self.load(name)
                    loaded = True
        except Exception as error:
            gdb.write("lazy symbols: %s: every library loaded\n" % error, gdb.STDERR)
            self.load_all()
            return True
        return loaded

    def for_selected_thread(self):
        """Loads what the selected thread's frames need; never raises."""
        if self.everything:
            return
        try:
            for _ in range(SOLIB_TRIES):
                name = self.first_missing()
                if name is None:
                    return
                self.load(name)
        except Exception as error:
            gdb.write("lazy symbols: %s: every library loaded\n" % error, gdb.STDERR)
        try:
            self.load_all()
        except Exception as error:
            gdb.write("sharedlibrary: %s\n" % error, gdb.STDERR)


def basic_regex_escape(text):
    """`text` as a POSIX basic regular expression (gdb's `sharedlibrary`)
    matching only itself: `+`, `?`, `(` are plain characters there, and a
    backslash before them would make them operators (a GNU extension)."""
    return "".join("\\" + c if c in ".[]*^$\\" else c for c in text)


def solibs_for(thread):
    """With lazy loading, the symbols `thread`'s frames need, once selected."""
    global SOLIBS
    if not globals().get("wazo_astdebug_lazy", False):
        return
    if SOLIBS is None:
        SOLIBS = Solibs()
    SOLIBS.for_selected_thread()


SHARED_OBJECT = re.compile(r"\.so(\.[0-9.]+)?$")


def solibs_read(mappings):
    """For the JSON: how many shared objects are mapped, and how many of them
    gdb has the symbols of (those the frames are in, and libc, which gdb
    reads by itself). None without lazy loading."""
    if SOLIBS is None:
        return None
    mapped = set()
    if mappings is not None:
        mapped = set(os.path.realpath(path) for path in mappings.bases if SHARED_OBJECT.search(path))
    read = set()
    for objfile in gdb.objfiles():
        if objfile.filename:
            read.add(os.path.realpath(objfile.filename))
    return {"read": len(read & mapped), "mapped": len(mapped), "all": SOLIBS.everything}
