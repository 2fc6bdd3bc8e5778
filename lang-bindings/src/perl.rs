//! Perl's probes (`perl` provider, perldtrace.d). Debian's perl is built
//! without them; the tests use a C fixture carrying the same provider,
//! probe names and argument layout.

use crate::tapset::{def, Decode::*, ProbeDef};
use std::sync::LazyLock;

pub static PROBES: LazyLock<Vec<ProbeDef>> = LazyLock::new(|| {
    let sub = [
        ("sub", 0, CStr),
        ("file", 1, CStr),
        ("line", 2, Signed),
        ("package", 3, CStr),
    ];
    vec![
        def("perl.sub.entry", "perl", "sub__entry", &sub, None),
        def("perl.sub.return", "perl", "sub__return", &sub, None),
        def(
            "perl.phase.change",
            "perl",
            "phase__change",
            &[("new", 0, CStr), ("old", 1, CStr)],
            None,
        ),
        def(
            "perl.op.entry",
            "perl",
            "op__entry",
            &[("op", 0, CStr)],
            None,
        ),
        def(
            "perl.file.loading",
            "perl",
            "loading__file",
            &[("file", 0, CStr)],
            None,
        ),
        def(
            "perl.file.loaded",
            "perl",
            "loaded__file",
            &[("file", 0, CStr)],
            None,
        ),
    ]
});
