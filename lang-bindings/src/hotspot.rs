//! HotSpot's probes (`hotspot` and `hotspot_jni` providers in libjvm.so).
//!
//! Strings are pointer + length with no NUL (they point into the JVM's
//! symbol table): [`Decode::LenStr`] fetches them in the kernel as strings
//! and cuts them to the length argument, so nothing past the end is shown.
//! Method, allocation and monitor probes are gated by JVM flags, see
//! [`crate::jdk`].

use crate::tapset::{def, Decode, Decode::*, FieldDef, Gate, ProbeDef};
use std::sync::LazyLock;

const fn text(len: usize) -> Decode {
    LenStr { len }
}

pub static PROBES: LazyLock<Vec<ProbeDef>> = LazyLock::new(|| {
    let method = [
        ("thread", 0, Unsigned),
        ("class", 1, text(2)),
        ("method", 3, text(4)),
        ("signature", 5, text(6)),
    ];
    let class = [
        ("class", 0, text(1)),
        ("loader", 2, Pointer),
        ("shared", 3, Bool),
    ];
    let thread = [
        ("name", 0, text(1)),
        ("java_tid", 2, Signed),
        ("native_tid", 3, Unsigned),
        ("daemon", 4, Bool),
    ];
    let pool = [
        ("manager", 0, text(1)),
        ("pool", 2, text(3)),
        ("initial", 4, Unsigned),
        ("used", 5, Unsigned),
        ("committed", 6, Unsigned),
        ("max", 7, Unsigned),
    ];
    let monitor = [
        ("thread", 0, Unsigned),
        ("monitor", 1, Pointer),
        ("class", 2, text(3)),
    ];
    let monitor_wait = [
        ("thread", 0, Unsigned),
        ("monitor", 1, Pointer),
        ("class", 2, text(3)),
        ("timeout", 4, Signed),
    ];
    let compiled = [
        ("class", 0, text(1)),
        ("method", 2, text(3)),
        ("signature", 4, text(5)),
    ];
    let compiled_load = [
        ("class", 0, text(1)),
        ("method", 2, text(3)),
        ("signature", 4, text(5)),
        ("code", 6, Pointer),
        ("size", 7, Unsigned),
    ];
    let compile = [
        ("compiler", 0, text(1)),
        ("class", 2, text(3)),
        ("method", 4, text(5)),
        ("signature", 6, text(7)),
    ];
    let compile_end = [
        ("compiler", 0, text(1)),
        ("class", 2, text(3)),
        ("method", 4, text(5)),
        ("signature", 6, text(7)),
        ("success", 8, Bool),
    ];
    let class_init = [
        ("class", 0, text(1)),
        ("loader", 2, Pointer),
        ("thread_type", 3, Signed),
    ];
    let vmop = [("op", 0, text(1)), ("mode", 2, Signed)];
    let parker = [("parker", 0, Pointer)];
    let hs = |event: &str, probe: &str, fields: &[(&'static str, usize, Decode)]| {
        def(event, "hotspot", probe, fields, None)
    };
    let gated = |event: &str, probe: &str, fields: &[(&'static str, usize, Decode)], gate| {
        def(event, "hotspot", probe, fields, Some(gate))
    };
    let mut probes = vec![
        gated(
            "hotspot.method.entry",
            "method__entry",
            &method,
            Gate::JavaMethods,
        ),
        gated(
            "hotspot.method.return",
            "method__return",
            &method,
            Gate::JavaMethods,
        ),
        hs("hotspot.class.loaded", "class__loaded", &class),
        hs("hotspot.class.unloaded", "class__unloaded", &class),
        hs("hotspot.thread.start", "thread__start", &thread),
        hs("hotspot.thread.stop", "thread__stop", &thread),
        hs("hotspot.gc.begin", "gc__begin", &[("full", 0, Bool)]),
        hs("hotspot.gc.end", "gc__end", &[]),
        hs("hotspot.mem_pool.gc.begin", "mem__pool__gc__begin", &pool),
        hs("hotspot.mem_pool.gc.end", "mem__pool__gc__end", &pool),
        gated(
            "hotspot.object.alloc",
            "object__alloc",
            &[
                ("thread", 0, Unsigned),
                ("class", 1, text(2)),
                ("size", 3, Unsigned),
            ],
            Gate::JavaAlloc,
        ),
        hs("hotspot.vm.init.begin", "vm__init__begin", &[]),
        hs("hotspot.vm.init.end", "vm__init__end", &[]),
        hs("hotspot.vm.shutdown", "vm__shutdown", &[]),
        hs(
            "hotspot.compiled_method.load",
            "compiled__method__load",
            &compiled_load,
        ),
        hs(
            "hotspot.compiled_method.unload",
            "compiled__method__unload",
            &compiled,
        ),
        hs(
            "hotspot.method.compile.begin",
            "method__compile__begin",
            &compile,
        ),
        hs(
            "hotspot.method.compile.end",
            "method__compile__end",
            &compile_end,
        ),
        hs(
            "hotspot.thread.park.begin",
            "thread__park__begin",
            &[
                ("parker", 0, Pointer),
                ("absolute", 1, Signed),
                ("time", 2, Signed),
            ],
        ),
        hs("hotspot.thread.park.end", "thread__park__end", &parker),
        hs("hotspot.thread.unpark", "thread__unpark", &parker),
        hs(
            "hotspot.thread.sleep.begin",
            "thread__sleep__begin",
            &[("millis", 0, Signed)],
        ),
        hs(
            "hotspot.thread.sleep.end",
            "thread__sleep__end",
            &[("timed_out", 0, Signed)],
        ),
        hs("hotspot.thread.yield", "thread__yield", &[]),
        hs("hotspot.vmops.request", "vmops__request", &vmop),
        hs("hotspot.vmops.begin", "vmops__begin", &vmop),
        hs("hotspot.vmops.end", "vmops__end", &vmop),
    ];
    for (event, probe) in [
        ("contended.enter", "monitor__contended__enter"),
        ("contended.entered", "monitor__contended__entered"),
        ("contended.exit", "monitor__contended__exit"),
        ("waited", "monitor__waited"),
        ("notify", "monitor__notify"),
        ("notify_all", "monitor__notifyAll"),
    ] {
        probes.push(gated(
            &format!("hotspot.monitor.{event}"),
            probe,
            &monitor,
            Gate::JavaMonitors,
        ));
    }
    probes.push(gated(
        "hotspot.monitor.wait",
        "monitor__wait",
        &monitor_wait,
        Gate::JavaMonitors,
    ));
    for step in [
        "required",
        "recursive",
        "concurrent",
        "erroneous",
        "super__failed",
        "clinit",
        "error",
        "end",
    ] {
        probes.push(hs(
            &format!("hotspot.class.initialization.{}", step.replace("__", "_")),
            &format!("class__initialization__{step}"),
            &class_init,
        ));
    }
    probes
});

/// `hotspot_jni:FUNCTION__entry` / `__return` → `hotspot.jni.FUNCTION.entry`
/// / `.return`, with the raw arguments (JNI handles and scalars) as
/// `arg0..`. `nargs` is the number of arguments the note declares.
pub fn jni_probe(probe: &str, nargs: usize) -> Option<ProbeDef> {
    let (function, kind) = probe
        .strip_suffix("__entry")
        .map(|f| (f, "entry"))
        .or_else(|| probe.strip_suffix("__return").map(|f| (f, "return")))?;
    const NAMES: [&str; 12] = [
        "arg0", "arg1", "arg2", "arg3", "arg4", "arg5", "arg6", "arg7", "arg8", "arg9", "arg10",
        "arg11",
    ];
    Some(ProbeDef {
        event: format!("hotspot.jni.{function}.{kind}"),
        provider: "hotspot_jni",
        probe: probe.to_string(),
        fields: NAMES
            .iter()
            .take(nargs)
            .enumerate()
            .map(|(arg, &name)| FieldDef {
                name,
                arg,
                decode: Unsigned,
            })
            .collect(),
        gate: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jni_names() {
        let p = jni_probe("GetStringUTFChars__return", 1).unwrap();
        assert_eq!(p.event, "hotspot.jni.GetStringUTFChars.return");
        assert_eq!(p.fields.len(), 1);
        assert!(jni_probe("Weird", 0).is_none());
    }

    #[test]
    fn method_strings_are_cut_by_their_lengths() {
        let m = PROBES
            .iter()
            .find(|p| p.event == "hotspot.method.entry")
            .unwrap();
        assert_eq!(m.string_args(), vec![1, 3, 5]);
        assert_eq!(m.used_args(), vec![0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(m.gate, Some(Gate::JavaMethods));
    }
}
