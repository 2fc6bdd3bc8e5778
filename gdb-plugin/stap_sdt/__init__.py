"""stap-sdt GDB plugin: static probes in GDB, from `stap-sdt list --json`.

`register()` (called by gdb-plugin/stap_sdt.py) adds the parameter,
commands and functions and connects GDB's events. Sourcing the plugin twice
registers once.
"""

import gdb

from . import adopt, breakpoints, catalog, commands, convenience, info, semaphores, tool

_registered = False

# Before these commands the plugin puts back the semaphores it raised: the
# process lives on after `detach`, and GDB 13 has no Python event before it.
_HOOKED_COMMANDS = ("detach", "kill", "quit")


def _on_new_objfile(_event):
    breakpoints.delete_doomed()
    catalog.invalidate()
    if catalog.current_pid():
        breakpoints.resolve()


def _on_free_objfile(event):
    catalog.invalidate()
    if event.objfile.filename:
        semaphores.forget_object(event.objfile.filename)
    breakpoints.forget_objfile(event)
    semaphores.reconcile(breakpoints.all_locations())


def _on_exited(_event):
    catalog.invalidate()
    convenience.clear()
    breakpoints.delete_doomed()
    breakpoints.forget_process()
    semaphores.forget_process()


def _on_stop(event):
    breakpoints.delete_doomed()
    breakpoints.reenable_anchors()
    try:
        frame = gdb.selected_frame()
        site = catalog.site_at(frame.pc())
    except (gdb.error, gdb.GdbError):
        # No frame, or no stap-sdt to list probes with (sdt-break says so
        # loudly; a plain stop should not).
        site = None
    if site is None:
        convenience.clear()
    else:
        convenience.publish(site, frame)
    breakpoints.report_stop(event)
    semaphores.reconcile(breakpoints.all_locations())


def _on_before_prompt():
    adopt.on_before_prompt()
    breakpoints.delete_doomed()
    breakpoints.reenable_anchors()
    semaphores.reconcile(breakpoints.all_locations())


def _on_gdb_exiting(event):
    semaphores.release_all()
    breakpoints.on_gdb_exiting(event)


def release_semaphores():
    """Called by the hook-detach/hook-kill/hook-quit the plugin defines."""
    semaphores.release_all()


def _define_hooks():
    for command in _HOOKED_COMMANDS:
        hook = f"hook-{command}"
        try:
            existing = gdb.execute(f"show user {hook}", to_string=True)
        except gdb.error:
            existing = ""
        if existing.strip():
            print(f"stap-sdt: {hook} is already defined; add "
                  "`python import stap_sdt; stap_sdt.release_semaphores()` to it "
                  f"so that `{command}` restores probe semaphores.")
            continue
        gdb.execute(f"define {hook}\npython import stap_sdt; stap_sdt.release_semaphores()\nend")


def _pending_on():
    """`break probe:P:N` is a pending breakpoint until the plugin adopts it; GDB's
    default (`auto`) asks first, and in scripts and -batch answers no. So the
    plugin answers yes for good, once, and says how to have the question back.
    An explicit `off` (set before the plugin loads) is left alone."""
    setting = gdb.parameter("breakpoint pending")
    if setting is None:
        gdb.execute("set breakpoint pending on", to_string=True)
        print("stap-sdt: `set breakpoint pending on` (for `break probe:PROVIDER:NAME`); "
              "`set breakpoint pending auto` asks again.")
    elif setting is False:
        print("stap-sdt: breakpoint pending is off: `break probe:PROVIDER:NAME` fails; "
              "`sdt-break PROVIDER:NAME` works.")


def register():
    global _registered
    if _registered:
        return
    _registered = True
    tool.register()
    convenience.register()
    commands.register()
    info.register()
    gdb.events.new_objfile.connect(_on_new_objfile)
    gdb.events.free_objfile.connect(_on_free_objfile)
    gdb.events.clear_objfiles.connect(catalog.invalidate)
    gdb.events.exited.connect(_on_exited)
    gdb.events.stop.connect(_on_stop)
    gdb.events.before_prompt.connect(_on_before_prompt)
    gdb.events.gdb_exiting.connect(_on_gdb_exiting)
    gdb.events.breakpoint_deleted.connect(breakpoints.on_breakpoint_deleted)
    gdb.events.breakpoint_modified.connect(breakpoints.on_breakpoint_modified)
    gdb.events.breakpoint_created.connect(adopt.on_breakpoint_created)
    _define_hooks()
    _pending_on()
