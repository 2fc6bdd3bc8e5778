//! Assembler text shared by every architecture: the `_.stapsdt.base`
//! anchor and the probe semaphores, both defined on first use.
//!
//! Every `asm!` that needs one of them carries its definition, guarded by
//! `.ifndef` (one definition per assembled object, however many probe
//! sites it holds) and placed in a COMDAT group (one per linked module,
//! however many objects or crates hold probe sites). The symbols are weak
//! and hidden: an executable and each shared object keep their own, as the
//! note addresses they anchor are per module.
//!
//! Semaphores are named `_.stapsdt.sema.PROVIDER.NAME`. Rust identifiers
//! hold no `.`, so the name is unambiguous, and it is a function of the
//! probe alone: every site of one probe, in any crate or generic
//! instantiation, shares one semaphore, and `enabled!` finds it by name.
//! This is why the semaphores are not Rust `static`s: a static belongs to
//! the one `probe!` expansion that declares it, and two expansions of the
//! same probe would get two semaphores.

#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_base_asm {
    () => {
        ".ifndef _.stapsdt.base
         .pushsection .stapsdt.base,\"aG\",\"progbits\",.stapsdt.base,comdat
         .weak _.stapsdt.base
         .hidden _.stapsdt.base
         _.stapsdt.base: .space 1
         .size _.stapsdt.base, 1
         .popsection
         .endif"
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_semaphore_symbol {
    ($p:ident $n:ident) => {
        concat!("_.stapsdt.sema.", stringify!($p), ".", stringify!($n))
    };
}

/// The semaphore: an `unsigned short` in `.probes`, as `sys/sdt.h` users
/// declare theirs, that tracers increment while attached.
///
/// `.probes` starts on a page of its own: a zero-size, page-aligned
/// anchor in it (kept by a `BFD_RELOC_NONE` from every semaphore, so
/// `--gc-sections` keeps it exactly when there is a semaphore). Why: the
/// kernel finds a semaphore by its file offset in the first writable
/// mapping of the file whose pages cover that offset. With a small
/// `.data` (rust-lld, fat LTO) `.probes` shared a file page with the end
/// of the RELRO segment, whose mapping is writable when the kernel looks,
/// and tracers' increments (bpftrace, tracefs `(ref_ctr)`) went to the
/// wrong address while the real semaphore stayed 0. (Pages of 4 KiB; an
/// AArch64 kernel with 64 KiB pages would need more.)
#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_semaphore_asm {
    ($p:ident $n:ident) => {
        concat!(
            ".ifndef _.stapsdt.probes.page\n",
            ".pushsection .probes,\"awG\",\"progbits\",_.stapsdt.probes.page,comdat\n",
            ".balign 4096\n",
            ".weak _.stapsdt.probes.page\n",
            ".hidden _.stapsdt.probes.page\n",
            "_.stapsdt.probes.page:\n",
            ".popsection\n",
            ".endif\n",
            ".ifndef ", $crate::__sdt_semaphore_symbol!($p $n), "\n",
            ".pushsection .probes,\"awG\",\"progbits\",",
            $crate::__sdt_semaphore_symbol!($p $n), ",comdat\n",
            ".weak ", $crate::__sdt_semaphore_symbol!($p $n), "\n",
            ".hidden ", $crate::__sdt_semaphore_symbol!($p $n), "\n",
            ".type ", $crate::__sdt_semaphore_symbol!($p $n), ", %object\n",
            ".size ", $crate::__sdt_semaphore_symbol!($p $n), ", 2\n",
            ".balign 2\n",
            $crate::__sdt_semaphore_symbol!($p $n), ": .2byte 0\n",
            ".reloc ., BFD_RELOC_NONE, _.stapsdt.probes.page\n",
            ".popsection\n",
            ".endif"
        )
    };
}

/// An argument's size prefix in the note, `[sep]SIZE[f]`, from the `const`
/// operands: `{sN}` is the signed size, `{fN}` the argument's type code
/// (`arg::type_code`), 1 for a float.
#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_arg_prefix {
    ($sep:literal ($v:ident $t:ident $s:ident $w:ident $f:ident)) => {
        concat!(
            ".ascii \"",
            $sep,
            "{",
            stringify!($s),
            "}\"\n",
            ".if {",
            stringify!($f),
            "} == 1\n",
            ".ascii \"f\"\n",
            ".endif\n"
        )
    };
}

/// An argument's word in the types note, from its type code `{fN}`
/// (`arg::type_code`), after `$sep`.
#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_type_word {
    ($sep:literal ($v:ident $t:ident $s:ident $w:ident $f:ident)) => {
        concat!(
            ".ascii \"",
            $sep,
            "\"\n",
            ".if {",
            stringify!($f),
            "} == 1\n",
            ".ascii \"float\"\n",
            ".elseif {",
            stringify!($f),
            "} == 2\n",
            ".ascii \"str\"\n",
            ".elseif {",
            stringify!($f),
            "} == 3\n",
            ".ascii \"strptr\"\n",
            ".elseif {",
            stringify!($f),
            "} == 4\n",
            ".ascii \"strlen\"\n",
            ".else\n",
            ".ascii \"int\"\n",
            ".endif\n"
        )
    };
}

/// The types note of probe `$p:$n` (see `stapsdt_reader::types::note`):
/// section `.note.stapsdt.types` (a note section, not allocated: no
/// relocations, nothing at run time), owner `stap-sdt`, type `0x7473`,
/// desc `PROVIDER\0NAME\0WORDS\0`, the words one per argument (`int`,
/// `float`, `str`, `strptr`, `strlen`) separated by spaces. Written once
/// per probe per assembled module (a `.L` symbol marks it written); the
/// reader merges the copies of several modules, which agree as long as
/// every site of the probe passes the same types.
#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_types_note {
    ($p:ident $n:ident [$($first:tt)?] [$($rest:tt)*]) => {
        concat!(
            ".ifndef .Lstapsdt.types.", stringify!($p), ".", stringify!($n), "\n",
            ".set .Lstapsdt.types.", stringify!($p), ".", stringify!($n), ", 1\n",
            ".pushsection .note.stapsdt.types,\"\",\"note\"\n",
            ".balign 4\n",
            ".4byte 996f-995f, 998f-997f, 0x7473\n",
            "995: .asciz \"stap-sdt\"\n",
            "996: .balign 4\n",
            "997: .asciz \"", stringify!($p), "\"\n",
            ".asciz \"", stringify!($n), "\"\n",
            $($crate::__sdt_type_word!("" $first),)?
            $($crate::__sdt_type_word!(" " $rest),)*
            ".byte 0\n",
            "998: .balign 4\n",
            ".popsection\n",
            ".endif"
        )
    };
}

/// The probe's assembler text: its site and its note, as one string with
/// `{sN}`/`{wN}`/`{fN}`/`{vN}` placeholders for the `asm!` operands.
/// `$insns` and `$operand` name the architecture's macros for the site's
/// instructions and an argument's `@operand` text (parameters, so that
/// tests can render another architecture's text; see
/// `tests/macros_aarch64.rs`).
///
/// The note goes to `.note.stapsdt` with `SHF_LINK_ORDER` pointing at the
/// site, so that when the linker's `--gc-sections` (always on for Rust)
/// drops the function holding the site, the note goes with it instead of
/// staying behind with a pc of 0 (which makes libbpf refuse the whole
/// probe and GDB fail to insert a breakpoint). The link needs a symbol at
/// the site unique in the assembled module; there is no unique-name
/// facility in `asm!`, so each site bumps an assembler counter and an
/// `.altmacro` expansion (`%(expr)` turns a value into text) names the
/// label after it. The note's relocations keep the base and the
/// semaphore alive exactly while a note refers to them.
#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_probe_template {
    ($insns:ident $operand:ident $p:ident $n:ident [$($first:tt)?] [$($rest:tt)*]) => {
        concat!(
            $crate::__sdt_base_asm!(), "\n",
            $crate::__sdt_semaphore_asm!($p $n), "\n",
            ".ifndef .Lstapsdt.sites\n",
            ".set .Lstapsdt.sites, 0\n",
            ".endif\n",
            ".set .Lstapsdt.sites, .Lstapsdt.sites + 1\n",
            ".altmacro\n",
            ".macro __stapsdt_note __stapsdt_id\n",
            ".Lstapsdt.site\\__stapsdt_id:\n",
            $crate::$insns!(), "\n",
            ".pushsection .note.stapsdt,\"o\",\"note\",.Lstapsdt.site\\__stapsdt_id\n",
            ".balign 4\n",
            ".4byte 992f-991f, 994f-993f, 3\n",
            "991: .asciz \"stapsdt\"\n",
            "992: .balign 4\n",
            "993: .8byte .Lstapsdt.site\\__stapsdt_id\n",
            ".8byte _.stapsdt.base\n",
            ".8byte ", $crate::__sdt_semaphore_symbol!($p $n), "\n",
            ".asciz \"", stringify!($p), "\"\n",
            ".asciz \"", stringify!($n), "\"\n",
            $($crate::__sdt_arg_prefix!("" $first), $crate::$operand!($first), "\n",)?
            $($crate::__sdt_arg_prefix!(" " $rest), $crate::$operand!($rest), "\n",)*
            ".byte 0\n",
            "994: .balign 4\n",
            ".popsection\n",
            ".endm\n",
            "__stapsdt_note %(.Lstapsdt.sites)\n",
            ".purgem __stapsdt_note\n",
            ".noaltmacro\n",
            $crate::__sdt_types_note!($p $n [$($first)?] [$($rest)*])
        )
    };
}

/// The probe: the template above with the arguments as operands (on the
/// ELF targets; `lib.rs` names it `__sdt_asm_probe` there).
#[doc(hidden)]
#[macro_export]
macro_rules! __sdt_elf_probe {
    ($p:ident $n:ident $($first:tt $($rest:tt)*)?) => {
        $crate::__sdt_elf_probe!(@ $p $n [$($first)?] [$($($rest)*)?] $($first $($rest)*)?)
    };
    (@ $p:ident $n:ident $first:tt $rest:tt
     $(($v:ident $t:ident $s:ident $w:ident $f:ident))*) => {
        // SAFETY: the site executes NOPs only (and, with `cheap-sites`,
        // moves the stack pointer down and back); the note and the
        // definitions go to other sections. `readonly`: a tracer reads
        // memory through pointer arguments (strings), so it must be up to
        // date at the site; nothing is written.
        unsafe {
            ::core::arch::asm!(
                $crate::__sdt_probe_template!(__sdt_site_insns __sdt_operand_asm $p $n $first $rest),
                $(
                    $s = const <$t as $crate::SdtArg>::SIZE,
                    $w = const $crate::arg::width(<$t as $crate::SdtArg>::SIZE),
                    $f = const <$t as $crate::SdtArg>::TYPE_CODE,
                    $v = in(reg) $crate::SdtArg::register(&$v),
                )*
                options(readonly, nostack, preserves_flags)
            )
        }
    };
}
