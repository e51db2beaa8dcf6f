
# Shared libraries' symbols, read only for the libraries the backtraces
# need (`wazo_astdebug_lazy = True`, a live process, gdb started with
# `set auto-solib-add off`).
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
# them cost a fifth of a millisecond a thread.

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
BARE_POINTER = re.compile(r"=(0x[0-9a-f]+)(?=[,)])")


class Solibs(object):
    """Which shared libraries gdb has the symbols of, and loading more."""

    def __init__(self):
        self.loaded = set()
        self.paths = {}
        self.names = {}
        self.everything = False
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
        wanted = [name for name in FRAME_FROM.findall(text) if self.lacks(name)]
        for value in BARE_POINTER.findall(text):
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
                if not self.for_text(text):
                    return text
                text = gdb.execute(command, to_string=True)
        except Exception as error:
            gdb.write("lazy symbols: %s: every library loaded\n" % error, gdb.STDERR)
        self.load_all()
        return gdb.execute(command, to_string=True)


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
        mapped = set(os.path.realpath(path) for path in mappings.bases if SHARED_OBJECT.search(path))
    read = set()
    for objfile in gdb.objfiles():
        if objfile.filename:
            read.add(os.path.realpath(objfile.filename))
    return {"read": len(read & mapped), "mapped": len(mapped), "all": SOLIBS.everything}
