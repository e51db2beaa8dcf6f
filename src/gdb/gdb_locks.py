# wazo-astdebug: who waits for whom, read from a live process or a core with gdb.
#
# Asterisk built without DEBUG_THREADS has no `core show locks`, but the
# answer is still in memory: a thread blocked on a mutex has the mutex's
# address in its frames (or, on x86-64, in %rdi of the futex syscall), and
# glibc keeps the owner's LWP in the mutex (`__data.__owner`, offset 8 on
# x86 for glibc 2.24 to 2.36). For a rwlock only the writer is recorded
# (`__cur_writer`, or `__writer` before glibc 2.25; offset 24 on x86-64).
#
# Runs inside gdb (Python 3.4+: no f-strings). Sourced before gdb attaches
# (`-ix`: compiling it and importing json cost a live process nothing), run
# by `wazo_astdebug_main()` once attached. Writes one JSON object to the
# path in `wazo_astdebug_out`, set by the caller.
#
# With `wazo_astdebug_backtraces = True` the script also prints what
# `thread apply all bt` would (same text, same order, gdb's own formatting:
# each thread's `thread apply N bt`), in the same pass: gdb drops its frame
# cache whenever the selected thread changes, so a separate `thread apply all
# bt` before the script unwinds every frame twice while Asterisk is stopped.
# With `wazo_astdebug_full = True` as well (a core), each thread's
# backtrace is `bt full`: the caller keeps it as bt-full.txt and drops the
# locals for bt-threads.txt, one unwind for both files.
# With `wazo_astdebug_detach = True` (a live process) the script detaches as
# soon as everything is read: the JSON is written while Asterisk runs again.
#
# A thousand threads of a frozen Asterisk stand in a few dozen places and
# wait for a handful of locks: each frame (by pc and position) is described
# once, each lock read once. Memory does not change while gdb holds the
# process, so a cached answer is the answer.
#
# Every read is guarded: a missing symbol or unreadable page loses one
# detail of one thread, never the run.

import json
import re
import struct

import gdb

MAX_FRAMES = 64
# How far from the innermost frame a lock call may be (glibc's own frames
# plus Asterisk's wrappers: about ten at most).
LOCK_SEARCH_DEPTH = 16


LEADING_UNDERSCORES = re.compile(r"^_+(GI_+)?")
# A thousand threads name the same few dozen functions: each is normalised once.
NORMALISED = {}


def normalise(name):
    """`__GI___pthread_mutex_lock`, `___pthread_mutex_lock` -> `pthread_mutex_lock`."""
    if not name:
        return ""
    known = NORMALISED.get(name)
    if known is None:
        known = LEADING_UNDERSCORES.sub("", name.split("@")[0])
        NORMALISED[name] = known
    return known


MUTEX_FUNCTIONS = set([
    "pthread_mutex_lock", "pthread_mutex_lock_full", "pthread_mutex_cond_lock",
    "pthread_mutex_cond_lock_full", "pthread_mutex_timedlock", "pthread_mutex_clocklock",
    "pthread_mutex_clocklock_common", "lll_mutex_lock_optimized",
])
LLL_WAIT_FUNCTIONS = set(["lll_lock_wait", "lll_lock_wait_private", "lll_robust_lock_wait"])
ASTERISK_MUTEX = set(["ast_pthread_mutex_lock"])
ASTERISK_RWLOCK_READ = set(["ast_rwlock_rdlock", "ast_rwlock_timedrdlock"])
ASTERISK_RWLOCK_WRITE = set(["ast_rwlock_wrlock", "ast_rwlock_timedwrlock"])
THREAD_STARTERS = set(["clone", "clone3", "start_thread", "dummy_start", "thread_start"])


def rwlock_mode(name):
    if "pthread_rwlock_" not in name:
        return None
    if "rdlock" in name:
        return "read"
    if "wrlock" in name:
        return "write"
    return None


# gdb.lookup_type searches every symbol table: once per name, not per thread.
TYPES = {}


def cached_type(name):
    if name not in TYPES:
        try:
            TYPES[name] = gdb.lookup_type(name)
        except Exception:
            TYPES[name] = None
    return TYPES[name]


# The arguments of each frame's function, by the frame's description:
# gdb's read_var(name) searches the frame's blocks at every call, and
# raises (slowly) when a frame has no debug info; a thousand threads stand
# at a few pcs.
ARGUMENTS = {}


def arguments(frame, info):
    """{name: (gdb.Symbol, is a pointer)} of the function `frame` is in."""
    known = ARGUMENTS.get(id(info))
    if known is not None:
        return known
    known = {}
    try:
        block = frame.block()
        while block is not None and block.function is None:
            block = block.superblock
        for symbol in block if block is not None else ():
            if symbol.is_argument:
                known[symbol.name] = (symbol, symbol.type.strip_typedefs().code == gdb.TYPE_CODE_PTR)
    except Exception:
        pass
    # Kept with the description it is keyed by (the key is its id).
    ARGUMENTS[id(info)] = known
    return known


def read_arg(frame, args, names):
    for name in names:
        found = args.get(name)
        if found is None:
            continue
        symbol, pointer = found
        try:
            value = frame.read_var(symbol)
            if pointer:
                # A pointer's int() is its address: no casts (gdb 7.x and later).
                return int(value)
        except Exception:
            continue
        try:
            return int(value.cast(cached_type("long").pointer()).cast(cached_type("unsigned long")))
        except Exception:
            try:
                return int(value)
            except Exception:
                continue
    return None


def read_string_arg(frame, args, name):
    found = args.get(name)
    if found is None:
        return None
    try:
        return frame.read_var(found[0]).string(length=200)
    except Exception:
        return None


def read_int_arg(frame, args, name):
    found = args.get(name)
    if found is None:
        return None
    try:
        return int(frame.read_var(found[0]))
    except Exception:
        return None


def read_i32(inferior, address):
    try:
        return struct.unpack("<i", bytes(inferior.read_memory(address, 4)))[0]
    except Exception:
        return None


# Where each integer field of a lock's `__data` is, from glibc's debug info,
# by type name: read once, then one read of a lock's bytes gives all of its
# fields (a cast and a dereference per field cost ten times more).
LAYOUTS = {}
INTEGER_FORMATS = {1: "b", 2: "h", 4: "i", 8: "q"}


def layout(type_name):
    """{field: (offset, struct format)} of `type_name`'s `__data`, or None."""
    if type_name in LAYOUTS:
        return LAYOUTS[type_name]
    fields = None
    lock_type = cached_type(type_name)
    try:
        data = [field for field in lock_type.strip_typedefs().fields() if field.name == "__data"][0]
        fields = {}
        for field in data.type.strip_typedefs().fields():
            field_type = field.type.strip_typedefs()
            code = INTEGER_FORMATS.get(field_type.sizeof)
            if field_type.code != gdb.TYPE_CODE_INT or code is None or field.bitpos % 8:
                continue
            if str(field_type).startswith("unsigned"):
                code = code.upper()
            fields[field.name] = ((data.bitpos + field.bitpos) // 8, "<" + code)
    except Exception:
        fields = None
    LAYOUTS[type_name] = fields
    return fields


def typed_fields(inferior, address, type_name):
    """{field: value} of `((type_name *) address)->__data`, or None without the type."""
    fields = layout(type_name)
    if not fields:
        return None
    size = max(offset + struct.calcsize(code) for offset, code in fields.values())
    try:
        data = bytes(inferior.read_memory(address, size))
    except Exception:
        return None
    return dict((name, struct.unpack_from(code, data, offset)[0]) for name, (offset, code) in fields.items())


def first_field(fields, names):
    for name in names:
        if fields is not None and name in fields:
            return fields[name]
    return None


ARCHITECTURES = {}


def is_x86_64(frame):
    try:
        name = frame.architecture().name()
    except Exception:
        return False
    known = ARCHITECTURES.get(name)
    if known is None:
        known = ARCHITECTURES[name] = "x86-64" in name
    return known


SYS_FUTEX_X86_64 = 202


def futex_word(frame):
    """The futex a thread sleeps on, from the registers of its innermost frame.

    Works without any debug info for libc: `$orig_rax` says the thread is in
    the futex syscall, and `$rdi` holds its first argument, the futex word.
    """
    if not is_x86_64(frame):
        return None
    try:
        if int(frame.read_register("orig_rax")) != SYS_FUTEX_X86_64:
            return None
        return int(frame.read_register("rdi")) & 0xFFFFFFFFFFFFFFFF
    except Exception:
        pass
    try:
        frame.select()
        if int(gdb.parse_and_eval("$orig_rax")) != SYS_FUTEX_X86_64:
            return None
        return int(gdb.parse_and_eval("$rdi")) & 0xFFFFFFFFFFFFFFFF
    except Exception:
        return None


def rwlock_from_futex(inferior, futex, mode, lwps):
    """The rwlock a futex word belongs to.

    Readers sleep on `__wrphase_futex` (glibc 2.25+) or `__readers_wakeup`
    (2.24), both at offset 8; writers on offset 12 or 8. Of the candidates,
    prefer the one whose writer field names a thread of this process.
    """
    candidates = [futex - 8] if mode == "read" else [futex - 12, futex - 8]
    for base in candidates:
        if read_i32(inferior, base + 24) in lwps:
            return base
    return candidates[-1]


def symbol_at(address):
    try:
        text = gdb.execute("info symbol 0x%x" % address, to_string=True).strip()
    except Exception:
        return None
    if not text or text.startswith("No symbol"):
        return None
    words = text.split()
    if len(words) >= 3 and words[1] == "+":
        return "%s+%s" % (words[0], words[2])
    return words[0]


def frame_info(frame, pc):
    name = frame.name() or "??"
    entry = {"function": name, "pc": "0x%x" % pc}
    if MAPPINGS is not None:
        path, offset = MAPPINGS.locate(pc)
        if path is not None:
            entry["object"] = path
            entry["offset"] = "0x%x" % offset
    try:
        sal = frame.find_sal()
        if sal.symtab is not None:
            entry["file"] = sal.symtab.filename
            entry["line"] = sal.line
    except Exception:
        pass
    try:
        if frame.function() is None:
            entry["no_symbols"] = True
    except Exception:
        pass
    return entry


def print_backtrace(thread):
    """`thread apply N bt` of the selected thread, as `thread apply all bt` prints it;
    the text, when it was taken as text (the libraries read lazily).

    Run while `thread` is selected, so that gdb neither switches threads nor
    drops the frames it unwinds: the lock pass that follows reads them from
    its cache. Printed straight to gdb's output, as the bare command does;
    with the libraries read lazily, taken as text first, then written.
    """
    command = "thread apply %d %s" % (
        thread.num, "bt full" if globals().get("wazo_astdebug_full", False) else "bt")
    try:
        if SOLIBS is None:
            gdb.execute(command)
            return None
        # Libraries read as the backtraces need them (gdb_solibs.py).
        text = SOLIBS.backtrace(command)
        gdb.write(text)
        return text
    except Exception as error:
        gdb.write("%s\n" % error, gdb.STDERR)
        return None


# Frame descriptions, and their JSON, by where the frame is: its pc, its
# kind, the kind of the frame it returned into (gdb looks a caller's line
# up at pc - 1 unless that frame is a signal trampoline), and how many
# frames before it share its pc (inlined functions).
FRAMES = {}


def frames_of(thread, selected=False):
    """The thread's frames, innermost first, with their (shared) descriptions."""
    if not selected:
        thread.switch()
    frames = []
    infos = []
    texts = []
    frame = gdb.newest_frame()
    inner_kind = None
    inner_pc = None
    same_pc = 0
    while frame is not None and len(frames) < MAX_FRAMES:
        pc = frame.pc()
        kind = frame.type()
        same_pc = same_pc + 1 if pc == inner_pc else 0
        key = (pc, kind, inner_kind, same_pc)
        known = FRAMES.get(key)
        if known is None:
            info = frame_info(frame, pc)
            known = FRAMES[key] = (info, json.dumps(info))
        frames.append(frame)
        infos.append(known[0])
        texts.append(known[1])
        inner_kind, inner_pc = kind, pc
        try:
            frame = frame.older()
        except Exception:
            break
    return frames, infos, texts


# A frame line with its pc: `#3  0x00007f3a10c2b149 in ` (`\n#`: as above).
FRAME_PC = re.compile(r"\n#(\d+) +0x([0-9a-f]+) in ")


# (infos, texts) by backtrace text (a `stack_key`), however they were found:
# threads waiting on one lock in one place often print the very same text.
TEXT_FRAMES = {}


def frames_from_text(key):
    """(infos, texts) of a backtrace whose frames all show their pc (a
    `stack_key`), from the descriptions of frames walked before; None when
    one of its frames is new.

    Such a text has no inlined call and no signal frame (they print no pc):
    every frame is a normal one, returned into by a normal one.
    """
    known = TEXT_FRAMES.get(key)
    if known is not None:
        return known
    infos = []
    texts = []
    inner_kind = None
    inner_pc = None
    same_pc = 0
    for match in FRAME_PC.finditer(key):
        if len(infos) == MAX_FRAMES:
            break
        if int(match.group(1)) != len(infos):
            return None
        pc = int(match.group(2), 16)
        same_pc = same_pc + 1 if pc == inner_pc else 0
        known = FRAMES.get((pc, gdb.NORMAL_FRAME, inner_kind, same_pc))
        if known is None:
            return None
        infos.append(known[0])
        texts.append(known[1])
        inner_kind, inner_pc = gdb.NORMAL_FRAME, pc
    return (infos, texts) if infos else None


class Walk(object):
    """The selected thread's frames, innermost first, unwound only as far as
    they are asked for: what the lock and task reads need of a stack whose
    descriptions are already known."""

    def __init__(self):
        self.frames = []

    def __getitem__(self, index):
        while len(self.frames) <= index:
            frame = self.frames[-1].older() if self.frames else gdb.newest_frame()
            if frame is None:
                raise IndexError("frame %d: the stack ends before it" % index)
            self.frames.append(frame)
        return self.frames[index]


# Stacks that wait for no lock and run no task, by their backtrace's text:
# (infos, texts, start). Most threads of a frozen Asterisk idle in one of a
# few such stacks, and a thread whose text is one of these has the same
# frames: it is not walked again while Asterisk is stopped.
QUIET = {}
# A frame line that does not show its pc (`#3  0x00007f... in` does): an
# inlined call, `<signal handler called>`, a pc at a line's start. Under the
# same text, such frames may differ from one thread to the next. (`(?! |`:
# ` +` must not give back a space to let the lookahead pass. `\n#`, not
# `^#` and re.M: a literal start is searched for, not tried at every byte,
# 5x faster; a backtrace's frames, past its header, start with `\n#`.)
FRAME_WITHOUT_PC = re.compile(r"\n#\d+ +(?! |0x[0-9a-f]+ in )")


def stack_key(text):
    """The frames of a backtrace's text (`backtrace_frames`); None when a
    frame does not show its pc."""
    key = backtrace_frames(text) if text is not None else None
    if key is None or FRAME_WITHOUT_PC.search(key):
        return None
    return key


def start_function(infos):
    """The function the thread was started with: outermost, past the trampolines."""
    for info in reversed(infos):
        name = normalise(info["function"])
        if name not in THREAD_STARTERS and info["function"] != "??":
            return info["function"]
    return None


def caller_site(infos, index):
    """First frame past `index` outside libc/pthread: where the lock was asked for."""
    for info in infos[index + 1:]:
        name = normalise(info["function"])
        if (name in MUTEX_FUNCTIONS or name in LLL_WAIT_FUNCTIONS or rwlock_mode(name)
                or name.startswith("ast_pthread_mutex") or name.startswith("ast_rwlock")
                or name in ("ao2_lock", "ao2_rdlock", "ao2_wrlock")):
            continue
        return info
    return None


# What each lock's memory says, by (address, kind): read once however many wait for it.
LOCKS = {}
SYMBOLS = {}


def lock_symbol(address):
    """`info symbol` of a lock's address, when gdb is the one to name it.

    Not for a live process: about 0.1 ms each while Asterisk is stopped,
    and the caller names its locks from /proc and the ELF files once gdb
    has let go. Not for what a core says is memory of no file (heap,
    anonymous): gdb can only answer "No symbol" there.
    """
    if not globals().get("wazo_astdebug_lock_names", True):
        return None
    if address not in SYMBOLS:
        if ANONYMOUS.holds(address):
            SYMBOLS[address] = None
        else:
            solibs_need(address)
            SYMBOLS[address] = symbol_at(address)
    return SYMBOLS[address]


# x86-64 glibc's lock layouts, fixed by its ABI: a mutex's owner LWP at 8, a
# rwlock's readers word at 0 (the count << 3, glibc 2.25+) and its writer
# LWP at 24. Read by offset there: gdb's lookup of pthread_mutex_t costs
# about 9 ms while Asterisk is stopped, and finds nothing on a server
# without libc's debug symbols.
X86_64_LOCK = struct.Struct("<i4xi12xi")


def lock_state(inferior, address, kind, x86_64):
    """The owner (a mutex) or writer and reader count (a rwlock) at `address`."""
    key = (address, kind)
    known = LOCKS.get(key)
    if known is not None:
        return known
    state = {}
    if x86_64:
        try:
            readers, owner, writer = X86_64_LOCK.unpack(bytes(inferior.read_memory(address, X86_64_LOCK.size)))
        except Exception:
            # The word alone, should the lock end a readable page.
            readers, owner, writer = None, read_i32(inferior, address + 8), read_i32(inferior, address + 24)
        if kind != "mutex":
            owner = writer
    elif kind == "mutex":
        readers = None
        owner = first_field(typed_fields(inferior, address, "pthread_mutex_t"), ["__owner"])
        if owner is None:
            owner = read_i32(inferior, address + 8)
    else:
        fields = typed_fields(inferior, address, "pthread_rwlock_t")
        owner = first_field(fields, ["__cur_writer", "__writer"])
        readers = first_field(fields, ["__readers"])
        if readers is None:
            readers = read_i32(inferior, address)
    state["owner_lwp"] = owner if owner and owner > 0 else None
    # Readers are counted, never named: `__readers` >> 3 (glibc 2.25+).
    if kind != "mutex" and readers is not None and readers >= 0:
        state["readers"] = readers >> 3
    LOCKS[key] = state
    return state


# What to read of a stack to know what it waits for, by its frames'
# descriptions: a thousand threads stand in a few dozen stacks, and which
# frames are lock calls depends on the functions alone.
PLANS = {}
ADDRESS, ASTERISK, AO2 = range(3)


def wait_plan(infos):
    """(kind, mode, reads, where), reads being (frame index, what, names); None when no lock call."""
    kind = None
    mode = None
    lock_index = None
    reads = []
    for index, info in enumerate(infos[:LOCK_SEARCH_DEPTH]):
        function = normalise(info["function"])
        if function in MUTEX_FUNCTIONS or function in LLL_WAIT_FUNCTIONS:
            if kind is None:
                kind, lock_index = "mutex", index
            reads.append((index, ADDRESS, ("mutex", "futex")))
        elif rwlock_mode(function):
            if kind is None:
                kind, mode, lock_index = "rwlock", rwlock_mode(function), index
            reads.append((index, ADDRESS, ("rwlock",)))
        elif function in ASTERISK_MUTEX or function in ASTERISK_RWLOCK_READ or function in ASTERISK_RWLOCK_WRITE:
            if kind is None:
                if function in ASTERISK_MUTEX:
                    kind = "mutex"
                else:
                    kind = "rwlock"
                    mode = "read" if function in ASTERISK_RWLOCK_READ else "write"
                lock_index = index
            # ast_mutex_t and ast_rwlock_t start with the pthread lock itself.
            reads.append((index, ASTERISK, ("t",)))
        elif function in ("ao2_lock", "ao2_rdlock", "ao2_wrlock") and kind is not None:
            reads.append((index, AO2, None))
    if kind is None:
        return None
    where = None
    site = caller_site(infos, lock_index)
    if site is not None:
        where = {"file": site.get("file"), "line": site.get("line"), "function": site["function"],
                 "object": site.get("object"), "offset": site.get("offset")}
    return kind, mode, reads, where


def find_wait(inferior, frames, infos, lwps):
    """What the thread is blocked on, or None."""
    key = tuple(map(id, infos))
    if key not in PLANS:
        PLANS[key] = wait_plan(infos)
    plan = PLANS[key]
    if plan is None:
        return None
    kind, mode, reads, caller = plan
    address = None
    name = None
    where = None
    for index, what, names in reads:
        frame = frames[index]
        args = arguments(frame, infos[index])
        if what == AO2:
            name = name or read_string_arg(frame, args, "var")
            continue
        if address is None:
            address = read_arg(frame, args, names)
        if what == ASTERISK:
            name = name or read_string_arg(frame, args, "mutex_name") or read_string_arg(frame, args, "name")
            file_name = read_string_arg(frame, args, "filename")
            line = read_int_arg(frame, args, "lineno") or read_int_arg(frame, args, "line")
            func = read_string_arg(frame, args, "func")
            if file_name and where is None:
                where = {"file": file_name, "line": line, "function": func}
    if address is None:
        futex = futex_word(frames[0])
        if futex:
            # A mutex's futex word is its first field.
            address = futex if kind == "mutex" else rwlock_from_futex(inferior, futex, mode, lwps)
    wait = {"kind": kind, "mode": mode, "address": None, "name": name}
    if address:
        wait["address"] = "0x%x" % address
        wait["name"] = name or lock_symbol(address)
        wait.update(lock_state(inferior, address, kind, is_x86_64(frames[0])))
    wait["where"] = where or caller
    return wait


def signal_info():
    """The signal that killed a core's process, from the core's NT_SIGINFO."""
    try:
        info = gdb.parse_and_eval("$_siginfo")
        signal = {"number": int(info["si_signo"]), "code": int(info["si_code"])}
    except Exception:
        return None
    try:
        signal["address"] = "0x%x" % int(info["_sifields"]["_sigfault"]["si_addr"])
    except Exception:
        pass
    return signal


# `thread apply` prints a thread's name in its header, as gdb's `thread.name`
# reads it, from /proc/PID/task/TID/comm at every call (9 ms a thousand
# threads while Asterisk is stopped): `Thread 5 (Thread 0x7f.. (LWP 12) "name"):`.
# Anything else there (a target's extra info, a name across lines) is left
# to `thread.name`.
THREAD_HEADER = re.compile(r'\nThread (\d+) \([^\n]*?LWP \d+\)?(?: "([^\n]*)")?\):\n')


def thread_name(thread, text):
    """The thread's name, from its backtrace's header when it has one."""
    match = THREAD_HEADER.match(text) if text is not None else None
    if match is not None and int(match.group(1)) == thread.num:
        return match.group(2)
    return thread.name


def analyse():
    """The document, with each thread's frames kept as their JSON texts."""
    global MAPPINGS, ANONYMOUS
    MAPPINGS = Mappings()
    if globals().get("wazo_astdebug_lock_names", True):
        ANONYMOUS = Anonymous(globals().get("wazo_astdebug_core"), MAPPINGS)
    inferior = gdb.selected_inferior()
    current = gdb.selected_thread()
    result = {
        "pid": inferior.pid,
        "current_thread": current.num if current is not None else None,
        "signal": signal_info(),
        "threads": [],
        "errors": [],
    }
    backtraces = globals().get("wazo_astdebug_backtraces", False)
    solibs_start()
    # `thread apply all` goes from the newest thread to the oldest.
    threads = sorted(inferior.threads(), key=lambda t: t.num, reverse=bool(backtraces))
    lwps = set(thread.ptid[1] for thread in threads)
    for thread in threads:
        entry = {"num": thread.num, "lwp": thread.ptid[1] or thread.ptid[0], "name": None}
        texts = []
        try:
            key = None
            text = None
            if backtraces:
                thread.switch()
                text = print_backtrace(thread)
                key = stack_key(text)
            entry["name"] = thread_name(thread, text)
            quiet = QUIET.get(key) if key is not None else None
            if quiet is not None:
                infos, texts, entry["start"] = quiet
                entry["waits"] = None
            else:
                # Threads waiting on one lock print one stack but for their
                # arguments: its frames are known, only a few are read.
                known = frames_from_text(key) if key is not None else None
                if known is not None:
                    frames = Walk()
                    infos, texts = known
                else:
                    frames, infos, texts = frames_of(thread, bool(backtraces))
                if key is not None:
                    TEXT_FRAMES[key] = (infos, texts)
                entry["start"] = start_function(infos)
                entry["waits"] = find_wait(inferior, frames, infos, lwps)
                task = task_of(inferior, thread, frames, infos)
                if task is not None:
                    entry["task"] = task
                elif key is not None and entry["waits"] is None:
                    # No task: no frame of ast_taskprocessor_execute (task_of
                    # answers for the first it finds).
                    QUIET[key] = (infos, texts, entry["start"])
        except Exception as error:
            result["errors"].append("thread %d: %s" % (thread.num, error))
        result["threads"].append((entry, texts))
    result["threads"].sort(key=lambda pair: pair[0]["num"])
    solibs = solibs_read(MAPPINGS)
    if solibs is not None:
        result["solibs"] = solibs
    return result


def encode(result):
    """json.dumps of the document, each frame's JSON written once per distinct frame.

    json.dumps, not json.dump: the streaming encoder is pure Python and
    several times slower on a thousand-thread document.
    """
    threads = []
    for entry, texts in result.pop("threads"):
        head = json.dumps(entry)
        threads.append('%s, "frames": [%s]}' % (head[:-1], ", ".join(texts)))
    head = json.dumps(result)
    return '%s, "threads": [%s]}' % (head[:-1], ", ".join(threads))


def detach():
    """Lets a live process go before anything that does not need it."""
    if not globals().get("wazo_astdebug_detach", False):
        return
    try:
        gdb.execute("detach")
    except Exception as error:
        gdb.write("detach: %s\n" % error, gdb.STDERR)


def wazo_astdebug_main():
    try:
        result = analyse()
    except Exception as error:
        result = {"pid": None, "threads": [], "errors": ["analysis failed: %s" % error]}
    detach()
    with open(wazo_astdebug_out, "w") as out:  # noqa: F821 (set by the caller)
        out.write(encode(result))

