//! CPython's probes (`python` provider), as built into Debian's
//! `/usr/bin/python3.11` and `libpython3.11.so.1.0`.
//!
//! Quirk: in Debian's 3.11 `function__entry` fires for ordinary Python
//! functions only while the `line` probe's semaphore is raised too (it
//! fires for some generator frames regardless; `function__return` always
//! fires). The tracer attaches `line` whenever function probes are traced
//! and hides its events unless asked (see `tests/lang_python.rs`).

use crate::tapset::{def, Decode::*, ProbeDef};
use std::sync::LazyLock;

pub static PROBES: LazyLock<Vec<ProbeDef>> = LazyLock::new(|| {
    let call = [
        ("file", 0, CStr),
        ("function", 1, CStr),
        ("line", 2, Signed),
    ];
    vec![
        def(
            "python.function.entry",
            "python",
            "function__entry",
            &call,
            None,
        ),
        def(
            "python.function.return",
            "python",
            "function__return",
            &call,
            None,
        ),
        def("python.line", "python", "line", &call, None),
        def(
            "python.gc.start",
            "python",
            "gc__start",
            &[("generation", 0, Signed)],
            None,
        ),
        def(
            "python.gc.done",
            "python",
            "gc__done",
            &[("collected", 0, Signed)],
            None,
        ),
        def(
            "python.import.start",
            "python",
            "import__find__load__start",
            &[("module", 0, CStr)],
            None,
        ),
        def(
            "python.import.done",
            "python",
            "import__find__load__done",
            &[("module", 0, CStr), ("found", 1, Signed)],
            None,
        ),
        def(
            "python.audit",
            "python",
            "audit",
            &[("event", 0, CStr), ("args", 1, Pointer)],
            None,
        ),
        // Declared in CPython's python.d as (const char *, const char *):
        // type name and module. Upstream CPython never fires them (Debian's
        // 3.11 has no notes for them); builds that patch them in do.
        def(
            "python.instance.new.start",
            "python",
            "instance__new__start",
            &[("type", 0, CStr), ("module", 1, CStr)],
            None,
        ),
        def(
            "python.instance.new.done",
            "python",
            "instance__new__done",
            &[("type", 0, CStr), ("module", 1, CStr)],
            None,
        ),
        def(
            "python.instance.delete.start",
            "python",
            "instance__delete__start",
            &[("type", 0, CStr), ("module", 1, CStr)],
            None,
        ),
        def(
            "python.instance.delete.done",
            "python",
            "instance__delete__done",
            &[("type", 0, CStr), ("module", 1, CStr)],
            None,
        ),
    ]
});

/// Events the tracer must attach, hidden, for `wanted` to fire.
pub fn companions(wanted: &str) -> Option<&'static str> {
    wanted
        .starts_with("python.function.")
        .then_some("python.line")
}
