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

import bisect
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


def read_arg(frame, names):
    for name in names:
        try:
            value = frame.read_var(name)
        except Exception:
            continue
        try:
            # A pointer's int() is its address: no casts (gdb 7.x and later).
            if value.type.strip_typedefs().code == gdb.TYPE_CODE_PTR:
                return int(value)
        except Exception:
            pass
        try:
            return int(value.cast(cached_type("long").pointer()).cast(cached_type("unsigned long")))
        except Exception:
            try:
                return int(value)
            except Exception:
                continue
    return None


def read_string_arg(frame, name):
    try:
        return frame.read_var(name).string(length=200)
    except Exception:
        return None


def read_int_arg(frame, name):
    try:
        return int(frame.read_var(name))
    except Exception:
        return None


def read_i32(inferior, address):
    try:
        return struct.unpack("<i", bytes(inferior.read_memory(address, 4)))[0]
    except Exception:
        return None


def typed_field(address, type_name, fields):
    """`((type_name *) address)->__data.<field>`, the first field the type has."""
    lock_type = cached_type(type_name)
    if lock_type is None:
        return None
    try:
        data = gdb.Value(address).cast(lock_type.pointer()).dereference()["__data"]
    except Exception:
        return None
    for field in fields:
        try:
            return int(data[field])
        except Exception:
            continue
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
        try:
            text = gdb.execute("info proc mappings", to_string=True)
        except Exception:
            text = ""
        for line in text.splitlines():
            words = line.split()
            if len(words) < 5 or not words[0].startswith("0x") or not words[-1].startswith("/"):
                continue
            try:
                start, end, offset = int(words[0], 16), int(words[1], 16), int(words[3], 16)
            except ValueError:
                continue
            path = words[-1]
            base = start - offset
            if path not in bases or base < bases[path]:
                bases[path] = base
            self.spans.append((start, end, path))
        self.spans.sort()
        self.starts = [span[0] for span in self.spans]
        self.bases = bases

    def locate(self, pc):
        """(file, offset from its load base), or (None, None)."""
        at = bisect.bisect_right(self.starts, pc) - 1
        if at < 0:
            return None, None
        start, end, path = self.spans[at]
        if pc >= end:
            return None, None
        return path, pc - self.bases.get(path, 0)


MAPPINGS = None


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
    """`thread apply N bt` of the selected thread, as `thread apply all bt` prints it.

    Run while `thread` is selected, so that gdb neither switches threads nor
    drops the frames it unwinds: the lock pass that follows reads them from
    its cache. Printed straight to gdb's output, as the bare command does.
    """
    try:
        gdb.execute("thread apply %d bt" % thread.num)
    except Exception as error:
        gdb.write("%s\n" % error, gdb.STDERR)


# Frame descriptions, and their JSON, by where the frame is: its pc, its
# kind, the kind of the frame it returned into (gdb looks a caller's line
# up at pc - 1 unless that frame is a signal trampoline), and how many
# frames before it share its pc (inlined functions).
FRAMES = {}


def frames_of(thread):
    """The thread's frames, innermost first, with their (shared) descriptions."""
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


def cached_symbol(address):
    if address not in SYMBOLS:
        SYMBOLS[address] = symbol_at(address)
    return SYMBOLS[address]


def lock_state(inferior, address, kind, x86_64):
    """The owner (a mutex) or writer and reader count (a rwlock) at `address`."""
    key = (address, kind)
    known = LOCKS.get(key)
    if known is not None:
        return known
    state = {}
    if kind == "mutex":
        owner = typed_field(address, "pthread_mutex_t", ["__owner"])
        if owner is None:
            owner = read_i32(inferior, address + 8)
        state["owner_lwp"] = owner if owner and owner > 0 else None
    else:
        writer = typed_field(address, "pthread_rwlock_t", ["__cur_writer", "__writer"])
        if writer is None and x86_64:
            writer = read_i32(inferior, address + 24)
        state["owner_lwp"] = writer if writer and writer > 0 else None
        # Readers are counted, never named: `__readers` >> 3 (glibc 2.25+).
        readers = typed_field(address, "pthread_rwlock_t", ["__readers"])
        if readers is None:
            readers = read_i32(inferior, address)
        if readers is not None and readers >= 0:
            state["readers"] = readers >> 3
    LOCKS[key] = state
    return state


def find_wait(inferior, frames, infos, lwps):
    """What the thread is blocked on, or None."""
    kind = None
    mode = None
    address = None
    lock_index = None
    name = None
    where = None
    for index, frame in enumerate(frames[:LOCK_SEARCH_DEPTH]):
        function = normalise(infos[index]["function"])
        if function in MUTEX_FUNCTIONS or function in LLL_WAIT_FUNCTIONS:
            if kind is None:
                kind, lock_index = "mutex", index
            if address is None:
                address = read_arg(frame, ["mutex", "futex"])
        elif rwlock_mode(function):
            if kind is None:
                kind, mode, lock_index = "rwlock", rwlock_mode(function), index
            if address is None:
                address = read_arg(frame, ["rwlock"])
        elif function in ASTERISK_MUTEX or function in ASTERISK_RWLOCK_READ or function in ASTERISK_RWLOCK_WRITE:
            if kind is None:
                if function in ASTERISK_MUTEX:
                    kind = "mutex"
                else:
                    kind = "rwlock"
                    mode = "read" if function in ASTERISK_RWLOCK_READ else "write"
                lock_index = index
            # ast_mutex_t and ast_rwlock_t start with the pthread lock itself.
            if address is None:
                address = read_arg(frame, ["t"])
            name = name or read_string_arg(frame, "mutex_name") or read_string_arg(frame, "name")
            file_name = read_string_arg(frame, "filename")
            line = read_int_arg(frame, "lineno") or read_int_arg(frame, "line")
            func = read_string_arg(frame, "func")
            if file_name and where is None:
                where = {"file": file_name, "line": line, "function": func}
        elif function in ("ao2_lock", "ao2_rdlock", "ao2_wrlock") and kind is not None:
            name = name or read_string_arg(frame, "var")
    if kind is None:
        return None
    if address is None:
        futex = futex_word(frames[0])
        if futex:
            # A mutex's futex word is its first field.
            address = futex if kind == "mutex" else rwlock_from_futex(inferior, futex, mode, lwps)
    wait = {"kind": kind, "mode": mode, "address": None, "name": name}
    if address:
        wait["address"] = "0x%x" % address
        wait["name"] = name or cached_symbol(address)
        wait.update(lock_state(inferior, address, kind, is_x86_64(frames[0])))
    if where is None and lock_index is not None:
        site = caller_site(infos, lock_index)
        if site is not None:
            where = {"file": site.get("file"), "line": site.get("line"), "function": site["function"],
                     "object": site.get("object"), "offset": site.get("offset")}
    wait["where"] = where
    return wait


TASK_EXECUTE = "ast_taskprocessor_execute"
CALLEE_SAVED_X86_64 = ("rbx", "rbp", "r12", "r13", "r14", "r15")
# Bytes read at each pointer a taskprocessor may be: past the end of Asterisk
# 22's struct ast_taskprocessor, whose name is inline at its end.
TPS_WINDOW = 512
# Leading words of that struct that may point to the name (Asterisk 13's `const char *name`).
TPS_NAME_POINTERS = 2
# Around a frame's stack pointer: the thread's own stack, never a taskprocessor.
STACK_SKIP = 1 << 20
# Stack words of ast_taskprocessor_execute's frame looked at, for a spilled tps.
TPS_STACK_WORDS = 32


def c_strings(data, minimum=3):
    """NUL-terminated runs of name characters: what a taskprocessor name looks like."""
    runs = []
    start = None
    for index, byte in enumerate(data):
        if 0x20 < byte < 0x7f:
            if start is None:
                start = index
            continue
        if byte == 0 and start is not None and index - start >= minimum:
            runs.append(data[start:index].decode("ascii"))
        start = None
    return runs


# x86-64 user space ends here (47-bit addresses).
USER_SPACE_END = 1 << 47


def read_bytes(inferior, address, size):
    # One smaller try: a struct near the end of a mapping.
    for length in (size, 128):
        try:
            return bytes(inferior.read_memory(address, length))
        except Exception:
            continue
    return None


def tps_name_with_symbols(inferior, frame):
    """`tps->name`: a pointer in older releases, an inline array (`char name[]`) in newer ones."""
    try:
        field = frame.read_var("tps")["name"]
        if field.type.strip_typedefs().code == gdb.TYPE_CODE_ARRAY:
            address = int(field.address)
        else:
            address = int(field)
    except Exception:
        return None
    data = read_bytes(inferior, address, 256)
    if not data:
        return None
    name = data.split(b"\0", 1)[0]
    if not c_strings(name + b"\0"):
        return None
    return name.decode("ascii")


def task_of(inferior, thread, frames, infos):
    """The taskprocessor a thread is running a task of, as far as memory says.

    An idle taskprocessor thread waits on its semaphore; one inside
    ast_taskprocessor_execute is running a task, and the function holds its
    tps in a callee-saved register or its own stack, since it uses it again
    once the task returns. With debug symbols, gdb reads `tps->name`; without,
    each pointer there is read and the C strings found are returned, with
    whether that memory also holds this thread's own pthread_t (the `thread`
    field Asterisk sets while a task runs): the Rust side matches them against
    the names `core show taskprocessors` gave.
    """
    for index, info in enumerate(infos):
        if normalise(info["function"]) != TASK_EXECUTE:
            continue
        frame = frames[index]
        task = {"frame": index, "name": None, "candidates": []}
        name = tps_name_with_symbols(inferior, frame)
        if name:
            task["name"] = name
            return task
        if not is_x86_64(frame):
            return task
        pointers = []
        for register in CALLEE_SAVED_X86_64:
            try:
                pointers.append(int(frame.read_register(register)) & 0xFFFFFFFFFFFFFFFF)
            except Exception:
                pass
        sp = None
        try:
            sp = int(frame.read_register("rsp")) & 0xFFFFFFFFFFFFFFFF
            stack = read_bytes(inferior, sp, 8 * TPS_STACK_WORDS) or b""
            pointers += [word for (word,) in struct.iter_unpack("<Q", stack[: len(stack) // 8 * 8])]
        except Exception:
            pass
        try:
            handle = thread.handle()
        except Exception:
            handle = None
        # Never the taskprocessor: the thread's own descriptor (its pthread_t)
        # and its stack, which both hold its id too.
        seen = set()
        if handle is not None and len(handle) == 8:
            seen.add(struct.unpack("<Q", handle)[0])
        for pointer in pointers:
            if sp is not None and sp - STACK_SKIP <= pointer < sp + STACK_SKIP:
                continue
            # A struct from malloc: aligned, in user space. Anything else
            # would cost a failed read (an exception) while Asterisk is stopped.
            if pointer < 0x10000 or pointer >= USER_SPACE_END or pointer % 8 or pointer in seen:
                continue
            seen.add(pointer)
            window = read_bytes(inferior, pointer, TPS_WINDOW)
            if window is None:
                continue
            words = window[: len(window) // 8 * 8]
            own = handle is not None and len(handle) == 8 and any(
                words[at:at + 8] == handle for at in range(0, len(words), 8))
            strings = c_strings(window)
            if own:
                for (target,) in list(struct.iter_unpack("<Q", words))[:TPS_NAME_POINTERS]:
                    if 0x10000 <= target < USER_SPACE_END:
                        named = read_bytes(inferior, target, 256)
                        if named:
                            strings += c_strings(named.split(b"\0", 1)[0] + b"\0")[:1]
            if strings:
                task["candidates"].append({"strings": strings[:16], "self": own})
            if own and strings:
                # The taskprocessor itself: its `thread` is this thread.
                break
        return task
    return None


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


def analyse():
    """The document, with each thread's frames kept as their JSON texts."""
    global MAPPINGS
    MAPPINGS = Mappings()
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
    # `thread apply all` goes from the newest thread to the oldest.
    threads = sorted(inferior.threads(), key=lambda t: t.num, reverse=bool(backtraces))
    lwps = set(thread.ptid[1] for thread in threads)
    for thread in threads:
        entry = {"num": thread.num, "lwp": thread.ptid[1] or thread.ptid[0], "name": thread.name}
        texts = []
        try:
            if backtraces:
                thread.switch()
                print_backtrace(thread)
            frames, infos, texts = frames_of(thread)
            entry["start"] = start_function(infos)
            entry["waits"] = find_wait(inferior, frames, infos, lwps)
            task = task_of(inferior, thread, frames, infos)
            if task is not None:
                entry["task"] = task
        except Exception as error:
            result["errors"].append("thread %d: %s" % (thread.num, error))
        result["threads"].append((entry, texts))
    result["threads"].sort(key=lambda pair: pair[0]["num"])
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

