# wazo-astdebug: which taskprocessor a thread runs a task of, read with gdb.
#
# Part of the lock script: written after gdb_locks.py and gdb_maps.py into
# the one file gdb sources (`-ix`), so it shares their helpers (`normalise`,
# `is_x86_64`). Kept apart only to keep each file readable.

import struct

import gdb

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
