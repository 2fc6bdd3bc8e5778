/* sdt.h: static probe points for C and C++ (SystemTap SDT v3 notes).
 *
 * Part of stap-sdt. A drop-in replacement for SystemTap's <sys/sdt.h>:
 * install it as sys/sdt.h, or put `-I .../sdt-header/include` and include
 * "sdt.h". It shares the include guard of <sys/sdt.h>, so whichever of the
 * two is included first wins and they never clash.
 *
 * What a probe site is
 * --------------------
 * STAP_PROBEn(provider, name, arg1, ..., argn) emits, at the point of use:
 *   - a one-byte `nop` in the code (the probe address);
 *   - a note in the non-allocated section `.note.stapsdt` (owner "stapsdt",
 *     type 3) holding the nop's address, the address of `_.stapsdt.base`,
 *     the address of the probe's semaphore (or 0), the provider, the name,
 *     and one "[-]SIZE[f]@OPERAND" description per argument, in which the
 *     compiler names where the value is at the nop (register, immediate,
 *     memory);
 *   - the one-byte section `.stapsdt.base`, used by consumers to detect
 *     that the file was relocated after link time (prelink).
 * Tracers (gdb, bpftrace, bcc, perf, systemtap, stap-sdt) put a breakpoint
 * or a uprobe on the nop and read the arguments from the described places.
 *
 * Differences from <sys/sdt.h> (each one is documented in docs/header.md)
 * ------------------------------------------------------------------
 * 1. Per-probe semaphores. Without _SDT_HAS_SEMAPHORES, every note refers
 *    to its semaphore `provider_name_semaphore` WEAKLY: a probe whose
 *    semaphore is defined somewhere in the link (STAP_SEMAPHORE_DEFINE)
 *    gets it, the others get 0. One file can mix both kinds, and every
 *    call site of one probe, in any file of the link, shares the one
 *    semaphore. With _SDT_HAS_SEMAPHORES (what `dtrace -h` headers define)
 *    the references are strong, as in SystemTap: a missing definition is
 *    a link error.
 * 2. `.stapsdt.base` survives `--gc-sections` (bfd, gold, lld): every probe
 *    site carries an R_*_NONE relocation against `_.stapsdt.base`, so the
 *    section is live exactly as long as some probe's code is.
 * 3. Arguments every tool can read. On x86-64 the default operand
 *    constraint is "nr" (register or constant) instead of "nor": memory
 *    operands such as `sym(%rip)` and `.LC0(%rip)`, which BPF tools
 *    (libbpf, bcc, bpftrace) cannot read, are never emitted. On every
 *    architecture a float or double is handed to the asm as its bits (an
 *    unsigned integer of its size: "8@%rax", "8@#4598175219545276416"):
 *    gdb 13, bcc and bpftrace reject a whole probe whose argument string
 *    holds SystemTap's "8f@" form, and nothing reads floating point
 *    registers or float immediates. Switches, defined before including:
 *      STAP_SDT_ARG_CONSTRAINT=nor   SystemTap's constraint (needed for
 *                                    `long double` arguments on x86-64);
 *      STAP_SDT_FLOAT_ARGS=1         floats as values, marked "f".
 * 4. Cheap sites (x86-64, opt-in: define STAP_SDT_CHEAP_SITE to 1 before
 *    including). The probe address is still a one-byte `nop` that every
 *    tracer uses as usual; it is followed by
 *        lea -128(%rsp),%rsp ; nopl 0(%rax,%rax,1) ; lea 128(%rsp),%rsp
 *    (bytes 48 8d 64 24 80 / 0f 1f 44 00 00 / 48 8d a4 24 80 00 00 00).
 *    A tracer that recognises these bytes may attach at the 5-byte nop,
 *    which the kernel can optimise into a CALL (cheaper hits: measured in
 *    docs/header.md, 0.71-0.81x of a plain site here): the
 *    CALL pushes a return address below %rsp, and moving %rsp down by 128
 *    first keeps the x86-64 red zone (the 128 bytes below %rsp that leaf
 *    code may use without moving %rsp) intact. Operands relative to %rsp
 *    are 128 bytes further at the 5-byte nop. Cost when no tracer is
 *    attached: the two `lea`s (no memory access, no flags). Limitation:
 *    DWARF unwinding from the 5-byte nop sees a CFA 128 bytes off in frames
 *    whose CFA is %rsp-based (no CFI is emitted: the header cannot know
 *    the frame's CFA register); frame-pointer unwinding is unaffected.
 * 5. STAP_PROBE0 exists; STAP_PROBEV is defined from C99 and C++11 on
 *    (or with SDT_USE_VARIADIC, which <sys/sdt.h> always wants);
 *    STAP_SEMAPHORE_DEFINE / STAP_SEMAPHORE_DECLARE / STAP_PROBE_ENABLED
 *    give per-probe semaphores without `dtrace -G`. In C++ an enum
 *    argument is signed or not as its underlying type (<sys/sdt.h> calls
 *    every C++ enum unsigned).
 * Not provided: the v1/v2 note formats (STAP_SDT_V1, STAP_SDT_V2).
 *
 * This file is C89 and C++98 clean (it only uses GNU extensions spelled
 * with double underscores) and works with gcc and clang.
 */

#ifndef _SYS_SDT_H
/* Treated as a system header wherever it is installed (as <sys/sdt.h>
   is): -pedantic does not flag the GNU extensions it relies on, nor
   -Wreserved-identifier the names it shares with <sys/sdt.h>. */
#if defined __GNUC__
#pragma GCC system_header
#endif
#define _SYS_SDT_H 1
/* Tells a program which implementation it got. */
#define _STAP_SDT_STAPSDT_HEADER 1

#ifndef __ASSEMBLER__

/* ---- Architecture choices ------------------------------------------- */

/* How an argument's location is chosen by the compiler (see 3. above). */
#ifndef STAP_SDT_ARG_CONSTRAINT
#if defined __x86_64__ && !defined __ILP32__
#define STAP_SDT_ARG_CONSTRAINT nr
#elif defined __powerpc__
#define STAP_SDT_ARG_CONSTRAINT nZr
#elif defined __ia64__
#define STAP_SDT_ARG_CONSTRAINT nr
#elif defined __arm__
#define STAP_SDT_ARG_CONSTRAINT g
#else
#define STAP_SDT_ARG_CONSTRAINT nor
#endif
#endif

/* How an operand is printed into the note. On i386 the register must be
   named by its 32-bit name whatever the operand's width (gcc PR80115);
   powerpc needs the "i" marker for constants. */
#if defined __powerpc__ || defined __powerpc64__
#define _SDT_OPERAND_TEXT(id) "%I[" id "]%[" id "]"
#elif defined __i386__
#define _SDT_OPERAND_TEXT(id) "%k[" id "]"
#else
#define _SDT_OPERAND_TEXT(id) "%[" id "]"
#endif

#if defined __LP64__ || defined _LP64
#define _SDT_ADDRESS_DIRECTIVE ".8byte"
#else
#define _SDT_ADDRESS_DIRECTIVE ".4byte"
#endif

#if defined __ia64__ || defined __s390__ || defined __s390x__
#define _SDT_NOP_TEXT "nop 0"
#else
#define _SDT_NOP_TEXT "nop"
#endif

/* The probe site: label 990 is the address in the note. */
#if defined STAP_SDT_CHEAP_SITE && STAP_SDT_CHEAP_SITE && defined __x86_64__
#define _SDT_SITE_TEXT                                                       \
  "990:\tnop\n"                                                              \
  "\t.byte 0x48,0x8d,0x64,0x24,0x80\n" /* lea -128(%rsp),%rsp */             \
  "\t.byte 0x0f,0x1f,0x44,0x00,0x00\n" /* nopl 0(%rax,%rax,1) */             \
  "\t.byte 0x48,0x8d,0xa4,0x24,0x80,0x00,0x00,0x00\n" /* lea 128(%rsp),%rsp */
#else
#define _SDT_SITE_TEXT "990:\t" _SDT_NOP_TEXT "\n"
#endif

/* R_*_NONE keeps `.stapsdt.base` alive under --gc-sections (see 2.). */
#if defined __x86_64__ || defined __i386__ || defined __aarch64__ ||         \
    defined __arm__ || defined __riscv || defined __powerpc__ ||             \
    defined __s390__ || defined __mips__ || defined __loongarch__
#define _SDT_KEEP_BASE_TEXT "\t.reloc 990b, BFD_RELOC_NONE, _.stapsdt.base\n"
#else
#define _SDT_KEEP_BASE_TEXT ""
#endif

/* ---- Argument descriptions ------------------------------------------ */

/* Each argument has two operands: a constant "code" and the value.
   code = size << 2 | float << 1 | signed; the assembler turns it into the
   "[-]SIZE[f]" text with .if chains, so no .altmacro state is needed. */
#define _SDT_CODE_SIGNED 1
#define _SDT_CODE_FLOAT 2

/* __builtin_classify_type: 1 integer, 2 char, 3 enum, 4 bool, 5 pointer,
   8 real, 14 array. Arrays and pointers are described as pointers. */
#define _SDT_IS_ADDRESS(x)                                                   \
  (__builtin_classify_type(x) == 5 || __builtin_classify_type(x) == 14)
#define _SDT_SIZE(x) (_SDT_IS_ADDRESS(x) ? sizeof(void *) : sizeof(x))
#define _SDT_IS_FLOAT(x) (__builtin_classify_type(x) == 8)

#ifdef __cplusplus
/* Whether an argument of type T is described as signed: integers, chars
   and enums (through their underlying type) by their own signedness;
   pointers, arrays and floating point types as unsigned, as SystemTap
   does. Everything is decided on the type: in C++ __builtin_classify_type
   is not a constant expression usable as a template argument. */
extern "C++" {
template <typename __sdt_T, bool __sdt_enum = __is_enum(__sdt_T)>
struct __sdt_signedness {
  enum { __value = !((__sdt_T)-1 > (__sdt_T)0) };
};
template <typename __sdt_T> struct __sdt_signedness<__sdt_T, true> {
  enum { __value = __sdt_signedness<__underlying_type(__sdt_T)>::__value };
};
template <typename __sdt_T> struct __sdt_signedness<__sdt_T *, false> {
  enum { __value = 0 };
};
template <typename __sdt_T> struct __sdt_signedness<__sdt_T[], false> {
  enum { __value = 0 };
};
template <typename __sdt_T, __SIZE_TYPE__ __sdt_N>
struct __sdt_signedness<__sdt_T[__sdt_N], false> {
  enum { __value = 0 };
};
template <> struct __sdt_signedness<float, false> {
  enum { __value = 0 };
};
template <> struct __sdt_signedness<double, false> {
  enum { __value = 0 };
};
template <> struct __sdt_signedness<long double, false> {
  enum { __value = 0 };
};
/* Top-level const/volatile stripped first (by value, not through a
   nested type, which a template would have to spell `typename`). */
template <typename __sdt_T> struct __sdt_sign_of {
  enum { __value = __sdt_signedness<__sdt_T>::__value };
};
template <typename __sdt_T> struct __sdt_sign_of<const __sdt_T> {
  enum { __value = __sdt_signedness<__sdt_T>::__value };
};
template <typename __sdt_T> struct __sdt_sign_of<volatile __sdt_T> {
  enum { __value = __sdt_signedness<__sdt_T>::__value };
};
template <typename __sdt_T> struct __sdt_sign_of<const volatile __sdt_T> {
  enum { __value = __sdt_signedness<__sdt_T>::__value };
};
}
#define _SDT_IS_SIGNED(x) (__sdt_sign_of<__typeof__(x)>::__value)
#else
#define _SDT_SIGN_TYPE(x)                                                    \
  __typeof__(__builtin_choose_expr(__builtin_classify_type(x) >= 1 &&        \
                                       __builtin_classify_type(x) <= 4,      \
                                   (x), 0U))
/* `(T)-1 > 0` holds exactly for unsigned T; written this way round because
   `< 0` on an unsigned type draws -Wtype-limits. */
#define _SDT_IS_SIGNED(x) (!((_SDT_SIGN_TYPE(x)) - 1 > (_SDT_SIGN_TYPE(x))0))
#endif

/* The "f" marker is opt-in: gdb 13 and bcc/bpftrace reject a whole probe
   whose argument string holds "8f@..." (see 3. above). */
#if defined STAP_SDT_FLOAT_ARGS && STAP_SDT_FLOAT_ARGS
#define _SDT_FLOAT_CODE(x) (_SDT_IS_FLOAT(x) ? _SDT_CODE_FLOAT : 0)
#else
#define _SDT_FLOAT_CODE(x) 0
#endif

#define _SDT_CODE(x)                                                         \
  ((int)(_SDT_SIZE(x) << 2) | _SDT_FLOAT_CODE(x) |                           \
   (_SDT_IS_SIGNED(x) ? _SDT_CODE_SIGNED : 0))

#define _SDT_STR(x) #x
#define _SDT_XSTR(x) _SDT_STR(x)

/* The value handed to the asm. A float or double is handed over as its
   bits (an unsigned integer of its size), so the compiler puts it where an
   integer goes (a general register, an integer immediate) and never writes
   a floating point register or constant into the note, which BPF tools and
   gdb cannot read. With STAP_SDT_FLOAT_ARGS, or for long double, the value
   is handed over as is. */
#if defined STAP_SDT_FLOAT_ARGS && STAP_SDT_FLOAT_ARGS
#define _SDT_VALUE(x) (x)
#elif defined __cplusplus
extern "C++" {
template <typename __sdt_T>
static __inline__ __attribute__((__always_inline__)) __sdt_T
__sdt_value(__sdt_T __sdt_x) {
  return __sdt_x;
}
static __inline__ __attribute__((__always_inline__)) unsigned int
__sdt_value(float __sdt_x) {
  union {
    float __f;
    unsigned int __u;
  } __sdt_bits;
  __sdt_bits.__f = __sdt_x;
  return __sdt_bits.__u;
}
__extension__ static __inline__
    __attribute__((__always_inline__)) unsigned long long
    __sdt_value(double __sdt_x) {
  union {
    double __f;
    unsigned long long __u;
  } __sdt_bits;
  __sdt_bits.__f = __sdt_x;
  return __sdt_bits.__u;
}
}
#define _SDT_VALUE(x) (__sdt_value(x))
#else
/* x if it is a float or double, else 0.0 (so that every branch below is a
   valid expression whatever x is). */
#define _SDT_FLOATISH(x)                                                     \
  __builtin_choose_expr(_SDT_IS_FLOAT(x) && sizeof(x) <= 8, (x), 0.0)
#define _SDT_BITS_AS(x, T)                                                   \
  (__extension__(union {                                                     \
     __typeof__(_SDT_FLOATISH(x)) __f;                                       \
     T __u;                                                                  \
   }){_SDT_FLOATISH(x)})                                                     \
      .__u
#define _SDT_VALUE(x)                                                        \
  __builtin_choose_expr(                                                     \
      _SDT_IS_FLOAT(x) && sizeof(x) <= 8,                                    \
      __builtin_choose_expr(sizeof(x) == 4, _SDT_BITS_AS(x, unsigned int),   \
                            _SDT_BITS_AS(x, unsigned long long)),            \
      (x))
#endif

#define _SDT_OPERANDS(i, x)                                                  \
  [__sdt_c##i] "n"(_SDT_CODE(x)),                                            \
      [__sdt_v##i] _SDT_XSTR(STAP_SDT_ARG_CONSTRAINT)(_SDT_VALUE(x))

/* The "[-]SIZE[f]" text of an argument, from its code, by an assembler
   macro defined for the arguments of one probe and purged after them (so
   the asm text stays short: ISO C's 4095-character string limit). Only
   shifts, & and == are used: `/` starts a comment in x86 gas. */
#define _SDT_SIZE_IS(n) "((\\c) >> 2) == " #n "\n.ascii \"" #n "\"\n"
#define _SDT_ARGDESC_DEFINE                                                  \
  ".macro __sdt_argdesc c\n"                                                 \
  ".if (\\c) & 1\n.ascii \"-\"\n.endif\n"                                    \
  ".if " _SDT_SIZE_IS(1) ".elseif " _SDT_SIZE_IS(2) ".elseif " _SDT_SIZE_IS(4) \
  ".elseif " _SDT_SIZE_IS(8) ".elseif " _SDT_SIZE_IS(16)                     \
  ".elseif " _SDT_SIZE_IS(10) ".elseif " _SDT_SIZE_IS(12)                    \
  ".elseif " _SDT_SIZE_IS(32) ".elseif " _SDT_SIZE_IS(3)                     \
  ".elseif " _SDT_SIZE_IS(5) ".elseif " _SDT_SIZE_IS(6)                      \
  ".elseif " _SDT_SIZE_IS(7) ".else\n"                                       \
  ".error \"sdt.h: unsupported probe argument size\"\n.endif\n"              \
  ".if (\\c) & 2\n.ascii \"f\"\n.endif\n"                                    \
  ".endm\n"
#define _SDT_ARGDESC_PURGE ".purgem __sdt_argdesc\n"

#define _SDT_ARG_TEXT(i)                                                     \
  "__sdt_argdesc %c[__sdt_c" #i "]\n"                                        \
  ".ascii \"@" _SDT_OPERAND_TEXT("__sdt_v" #i) "\"\n"

#define _SDT_SP ".ascii \" \"\n"
#define _SDT_ARGS_TEXT_0 ""
#define _SDT_WITH_ARGDESC(text) _SDT_ARGDESC_DEFINE text _SDT_ARGDESC_PURGE
#define _SDT_ARGS_TEXT_1 _SDT_ARG_TEXT(1)
#define _SDT_ARGS_TEXT_2 _SDT_ARGS_TEXT_1 _SDT_SP _SDT_ARG_TEXT(2)
#define _SDT_ARGS_TEXT_3 _SDT_ARGS_TEXT_2 _SDT_SP _SDT_ARG_TEXT(3)
#define _SDT_ARGS_TEXT_4 _SDT_ARGS_TEXT_3 _SDT_SP _SDT_ARG_TEXT(4)
#define _SDT_ARGS_TEXT_5 _SDT_ARGS_TEXT_4 _SDT_SP _SDT_ARG_TEXT(5)
#define _SDT_ARGS_TEXT_6 _SDT_ARGS_TEXT_5 _SDT_SP _SDT_ARG_TEXT(6)
#define _SDT_ARGS_TEXT_7 _SDT_ARGS_TEXT_6 _SDT_SP _SDT_ARG_TEXT(7)
#define _SDT_ARGS_TEXT_8 _SDT_ARGS_TEXT_7 _SDT_SP _SDT_ARG_TEXT(8)
#define _SDT_ARGS_TEXT_9 _SDT_ARGS_TEXT_8 _SDT_SP _SDT_ARG_TEXT(9)
#define _SDT_ARGS_TEXT_10 _SDT_ARGS_TEXT_9 _SDT_SP _SDT_ARG_TEXT(10)
#define _SDT_ARGS_TEXT_11 _SDT_ARGS_TEXT_10 _SDT_SP _SDT_ARG_TEXT(11)
#define _SDT_ARGS_TEXT_12 _SDT_ARGS_TEXT_11 _SDT_SP _SDT_ARG_TEXT(12)

#define _SDT_ARGS_0 ""
#define _SDT_ARGS_1 _SDT_WITH_ARGDESC(_SDT_ARGS_TEXT_1)
#define _SDT_ARGS_2 _SDT_WITH_ARGDESC(_SDT_ARGS_TEXT_2)
#define _SDT_ARGS_3 _SDT_WITH_ARGDESC(_SDT_ARGS_TEXT_3)
#define _SDT_ARGS_4 _SDT_WITH_ARGDESC(_SDT_ARGS_TEXT_4)
#define _SDT_ARGS_5 _SDT_WITH_ARGDESC(_SDT_ARGS_TEXT_5)
#define _SDT_ARGS_6 _SDT_WITH_ARGDESC(_SDT_ARGS_TEXT_6)
#define _SDT_ARGS_7 _SDT_WITH_ARGDESC(_SDT_ARGS_TEXT_7)
#define _SDT_ARGS_8 _SDT_WITH_ARGDESC(_SDT_ARGS_TEXT_8)
#define _SDT_ARGS_9 _SDT_WITH_ARGDESC(_SDT_ARGS_TEXT_9)
#define _SDT_ARGS_10 _SDT_WITH_ARGDESC(_SDT_ARGS_TEXT_10)
#define _SDT_ARGS_11 _SDT_WITH_ARGDESC(_SDT_ARGS_TEXT_11)
#define _SDT_ARGS_12 _SDT_WITH_ARGDESC(_SDT_ARGS_TEXT_12)

/* A probe without arguments still needs one operand, so that the template
   is an extended asm and `%%` means `%` in every case. */
#define _SDT_OPERANDS_0() [__sdt_unused] "n"(0)
#define _SDT_OPERANDS_1(a) _SDT_OPERANDS(1, a)
#define _SDT_OPERANDS_2(a, b) _SDT_OPERANDS_1(a), _SDT_OPERANDS(2, b)
#define _SDT_OPERANDS_3(a, b, c) _SDT_OPERANDS_2(a, b), _SDT_OPERANDS(3, c)
#define _SDT_OPERANDS_4(a, b, c, d)                                          \
  _SDT_OPERANDS_3(a, b, c), _SDT_OPERANDS(4, d)
#define _SDT_OPERANDS_5(a, b, c, d, e)                                       \
  _SDT_OPERANDS_4(a, b, c, d), _SDT_OPERANDS(5, e)
#define _SDT_OPERANDS_6(a, b, c, d, e, f)                                    \
  _SDT_OPERANDS_5(a, b, c, d, e), _SDT_OPERANDS(6, f)
#define _SDT_OPERANDS_7(a, b, c, d, e, f, g)                                 \
  _SDT_OPERANDS_6(a, b, c, d, e, f), _SDT_OPERANDS(7, g)
#define _SDT_OPERANDS_8(a, b, c, d, e, f, g, h)                              \
  _SDT_OPERANDS_7(a, b, c, d, e, f, g), _SDT_OPERANDS(8, h)
#define _SDT_OPERANDS_9(a, b, c, d, e, f, g, h, i)                           \
  _SDT_OPERANDS_8(a, b, c, d, e, f, g, h), _SDT_OPERANDS(9, i)
#define _SDT_OPERANDS_10(a, b, c, d, e, f, g, h, i, j)                       \
  _SDT_OPERANDS_9(a, b, c, d, e, f, g, h, i), _SDT_OPERANDS(10, j)
#define _SDT_OPERANDS_11(a, b, c, d, e, f, g, h, i, j, k)                    \
  _SDT_OPERANDS_10(a, b, c, d, e, f, g, h, i, j), _SDT_OPERANDS(11, k)
#define _SDT_OPERANDS_12(a, b, c, d, e, f, g, h, i, j, k, l)                 \
  _SDT_OPERANDS_11(a, b, c, d, e, f, g, h, i, j, k), _SDT_OPERANDS(12, l)

/* ---- Semaphores ----------------------------------------------------- */

#define _SDT_SEMAPHORE_SYMBOL(provider, name) provider##_##name##_semaphore

/* Without _SDT_HAS_SEMAPHORES the note refers to the semaphore through a
   .weakref alias: an undefined semaphore becomes a weak undefined symbol
   (address 0: no semaphore), while a definition in the same file keeps its
   binding (a plain `.weak` would turn a definition weak, and clang rejects
   that). */
#if defined _SDT_HAS_SEMAPHORES
#define _SDT_SEMAPHORE_TEXT_1(symbol)                                        \
  "\t" _SDT_ADDRESS_DIRECTIVE " " symbol "\n"
#else
#define _SDT_SEMAPHORE_TEXT_1(symbol)                                        \
  ".ifndef _sdt_weak." symbol "\n"                                           \
  "\t.weakref _sdt_weak." symbol ", " symbol "\n"                            \
  ".endif\n"                                                                 \
  "\t" _SDT_ADDRESS_DIRECTIVE " _sdt_weak." symbol "\n"
#endif
#define _SDT_SEMAPHORE_TEXT(provider, name)                                  \
  _SDT_SEMAPHORE_TEXT_1(_SDT_XSTR(_SDT_SEMAPHORE_SYMBOL(provider, name)))

/* Define the semaphore of one probe (once per program or library). Every
   site of provider:name in the link refers to it. Hidden, so that two
   shared objects never share (or interpose) each other's semaphores. */
#define STAP_SEMAPHORE_DEFINE(provider, name)                                \
  __extension__ unsigned short _SDT_SEMAPHORE_SYMBOL(provider, name)         \
      __attribute__((unused, section(".probes"), visibility("hidden")))      \
      = 0
#define STAP_SEMAPHORE_DECLARE(provider, name)                               \
  __extension__ extern unsigned short _SDT_SEMAPHORE_SYMBOL(provider, name)  \
      __attribute__((unused, section(".probes"), visibility("hidden")))
/* Nonzero while a tracer is attached to provider:name (its semaphore must
   be declared or defined in this file). */
#define STAP_PROBE_ENABLED(provider, name)                                   \
  __builtin_expect(                                                          \
      *(volatile unsigned short *)&_SDT_SEMAPHORE_SYMBOL(provider, name) != 0, 0)

/* ---- The note ------------------------------------------------------- */

#define _SDT_BASE_TEXT                                                       \
  ".ifndef _.stapsdt.base\n"                                                 \
  "\t.pushsection .stapsdt.base,\"aG\",\"progbits\",.stapsdt.base,comdat\n"  \
  "\t.weak _.stapsdt.base\n"                                                 \
  "\t.hidden _.stapsdt.base\n"                                               \
  "_.stapsdt.base:\n\t.space 1\n"                                            \
  "\t.size _.stapsdt.base, 1\n"                                              \
  "\t.popsection\n"                                                          \
  ".endif\n"

#define _SDT_NOTE_HEAD(provider, name)                                       \
  "\t.pushsection .note.stapsdt,\"?\",\"note\"\n"                            \
  "\t.balign 4\n"                                                            \
  "\t.4byte 992f-991f, 994f-993f, 3\n"                                       \
  "991:\t.asciz \"stapsdt\"\n"                                               \
  "992:\t.balign 4\n"                                                        \
  "993:\t" _SDT_ADDRESS_DIRECTIVE " 990b\n"                                  \
  "\t" _SDT_ADDRESS_DIRECTIVE " _.stapsdt.base\n"                            \
  _SDT_SEMAPHORE_TEXT(provider, name)                                        \
  "\t.asciz \"" _SDT_XSTR(provider) "\"\n"                                   \
  "\t.asciz \"" _SDT_XSTR(name) "\"\n"

#define _SDT_NOTE_TAIL                                                       \
  "\t.byte 0\n"                                                              \
  "994:\t.balign 4\n"                                                        \
  "\t.popsection\n"

#define _SDT_PROBE(provider, name, n, arglist)                               \
  do {                                                                       \
    __asm__ __volatile__(_SDT_SITE_TEXT _SDT_BASE_TEXT _SDT_KEEP_BASE_TEXT   \
                         _SDT_NOTE_HEAD(provider, name) _SDT_ARGS_##n         \
                             _SDT_NOTE_TAIL                                  \
                         : /* no outputs */                                  \
                         : _SDT_OPERANDS_##n arglist);                       \
  } while (0)

/* ---- Public macros -------------------------------------------------- */

#define STAP_PROBE(provider, name) _SDT_PROBE(provider, name, 0, ())
#define STAP_PROBE0(provider, name) _SDT_PROBE(provider, name, 0, ())
#define STAP_PROBE1(provider, name, a1) _SDT_PROBE(provider, name, 1, (a1))
#define STAP_PROBE2(provider, name, a1, a2)                                  \
  _SDT_PROBE(provider, name, 2, (a1, a2))
#define STAP_PROBE3(provider, name, a1, a2, a3)                              \
  _SDT_PROBE(provider, name, 3, (a1, a2, a3))
#define STAP_PROBE4(provider, name, a1, a2, a3, a4)                          \
  _SDT_PROBE(provider, name, 4, (a1, a2, a3, a4))
#define STAP_PROBE5(provider, name, a1, a2, a3, a4, a5)                      \
  _SDT_PROBE(provider, name, 5, (a1, a2, a3, a4, a5))
#define STAP_PROBE6(provider, name, a1, a2, a3, a4, a5, a6)                  \
  _SDT_PROBE(provider, name, 6, (a1, a2, a3, a4, a5, a6))
#define STAP_PROBE7(provider, name, a1, a2, a3, a4, a5, a6, a7)              \
  _SDT_PROBE(provider, name, 7, (a1, a2, a3, a4, a5, a6, a7))
#define STAP_PROBE8(provider, name, a1, a2, a3, a4, a5, a6, a7, a8)          \
  _SDT_PROBE(provider, name, 8, (a1, a2, a3, a4, a5, a6, a7, a8))
#define STAP_PROBE9(provider, name, a1, a2, a3, a4, a5, a6, a7, a8, a9)      \
  _SDT_PROBE(provider, name, 9, (a1, a2, a3, a4, a5, a6, a7, a8, a9))
#define STAP_PROBE10(provider, name, a1, a2, a3, a4, a5, a6, a7, a8, a9,     \
                     a10)                                                    \
  _SDT_PROBE(provider, name, 10, (a1, a2, a3, a4, a5, a6, a7, a8, a9, a10))
#define STAP_PROBE11(provider, name, a1, a2, a3, a4, a5, a6, a7, a8, a9,     \
                     a10, a11)                                               \
  _SDT_PROBE(provider, name, 11,                                             \
             (a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11))
#define STAP_PROBE12(provider, name, a1, a2, a3, a4, a5, a6, a7, a8, a9,     \
                     a10, a11, a12)                                          \
  _SDT_PROBE(provider, name, 12,                                             \
             (a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12))

/* STAP_PROBEV(provider, name, args...): the count of args picks STAP_PROBEn.
   The leading 0 keeps the count right when no argument is given; `, ##`
   drops the comma before an empty argument list (gcc and clang). Defined
   from C99 and C++11 on, or with SDT_USE_VARIADIC (as <sys/sdt.h>). */
#if defined SDT_USE_VARIADIC ||                                              \
    (defined __STDC_VERSION__ && __STDC_VERSION__ >= 199901L) ||             \
    (defined __cplusplus && __cplusplus >= 201103L)
#define _SDT_COUNT_PICK(z, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11,      \
                        a12, count, ...)                                     \
  count
#define _SDT_COUNT(...)                                                      \
  _SDT_COUNT_PICK(__VA_ARGS__, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define _SDT_PASTE(a, b) a##b
#define _SDT_PROBE_N(count) _SDT_PASTE(STAP_PROBE, count)
#define STAP_PROBEV(provider, name, ...)                                     \
  _SDT_PROBE_N(_SDT_COUNT(0, ##__VA_ARGS__))(provider, name, ##__VA_ARGS__)
#endif

/* STAP_PROBE_ASM: a probe inside the caller's own asm statement, between
   two of its instructions. STAP_PROBE_ASM(provider, name, ARGS) with ARGS
   the argument descriptions as written ("-4@%eax 8@4(%rsi)"; in an
   extended asm write %%reg), or with STAP_PROBE_ASM_TEMPLATE(n) as ARGS and
   STAP_PROBE_ASM_OPERANDS(n, arg1, ..., argn) among the asm's inputs, to
   have the compiler describe n values. */
#define _SDT_PROBE_ASM_TEXT(provider, name, args_text)                       \
  _SDT_SITE_TEXT _SDT_BASE_TEXT _SDT_KEEP_BASE_TEXT                          \
  _SDT_NOTE_HEAD(provider, name) args_text _SDT_NOTE_TAIL
#define _SDT_PROBE_ASM_RAW(provider, name, args)                             \
  _SDT_PROBE_ASM_TEXT(provider, name, ".ascii \"" #args "\"\n")
#if (defined __STDC_VERSION__ && __STDC_VERSION__ >= 199901L) ||             \
    (defined __cplusplus && __cplusplus >= 201103L)
#define _SDT_PROBE_ASM_1(provider, name, args)                               \
  _SDT_PROBE_ASM_RAW(provider, name, args)
#define _SDT_PROBE_ASM_2(provider, name, template_text, marker)              \
  _SDT_PROBE_ASM_TEXT(provider, name, template_text)
#define _SDT_PROBE_ASM_PICK(count) _SDT_PASTE(_SDT_PROBE_ASM_, count)
#define STAP_PROBE_ASM(provider, name, ...)                                  \
  _SDT_PROBE_ASM_PICK(_SDT_COUNT(0, __VA_ARGS__))(provider, name, __VA_ARGS__)
/* Two macro arguments: the text, and a marker that makes them two. */
#define STAP_PROBE_ASM_TEMPLATE(n) _SDT_ARGS_##n, _stap_sdt_template
#define STAP_PROBE_ASM_OPERANDS(n, ...) _SDT_OPERANDS_##n(__VA_ARGS__)
#else
#define STAP_PROBE_ASM(provider, name, args)                                 \
  _SDT_PROBE_ASM_RAW(provider, name, args)
#endif

#endif /* !__ASSEMBLER__ */

#ifdef __ASSEMBLER__
/* In assembler sources (.S): STAP_PROBEn(provider, name, arg1, ...) with
   each argument a description as written ("-4@%edi"), as <sys/sdt.h>
   takes them. A semaphore is referred to with _SDT_HAS_SEMAPHORES. */
#if defined __LP64__ || defined _LP64
#define _SDT_ASM_ADDRESS .8byte
#else
#define _SDT_ASM_ADDRESS .4byte
#endif
#if defined __ia64__ || defined __s390__ || defined __s390x__
#define _SDT_ASM_NOP nop 0
#else
#define _SDT_ASM_NOP nop
#endif
#if defined _SDT_HAS_SEMAPHORES
#define _SDT_ASM_SEMAPHORE(provider, name)                                   \
  _SDT_ASM_ADDRESS provider##_##name##_semaphore
#else
#define _SDT_ASM_SEMAPHORE(provider, name) _SDT_ASM_ADDRESS 0
#endif
#if defined __x86_64__ || defined __i386__ || defined __aarch64__ ||         \
    defined __arm__ || defined __riscv || defined __powerpc__ ||             \
    defined __s390__ || defined __mips__ || defined __loongarch__
#define _SDT_ASM_KEEP_BASE .reloc 990b, BFD_RELOC_NONE, _.stapsdt.base
#else
#define _SDT_ASM_KEEP_BASE
#endif
#define _SDT_ASM_STR(x) #x
#define _SDT_ASM_PROBE(provider, name, args)                                 \
  990: _SDT_ASM_NOP;                                                         \
  .ifndef _.stapsdt.base;                                                    \
  .pushsection .stapsdt.base, "aG", "progbits", .stapsdt.base, comdat;       \
  .weak _.stapsdt.base;                                                      \
  .hidden _.stapsdt.base;                                                    \
  _.stapsdt.base: .space 1;                                                  \
  .size _.stapsdt.base, 1;                                                   \
  .popsection;                                                               \
  .endif;                                                                    \
  _SDT_ASM_KEEP_BASE;                                                        \
  .pushsection .note.stapsdt, "?", "note";                                   \
  .balign 4;                                                                 \
  .4byte 992f-991f, 994f-993f, 3;                                            \
  991: .asciz "stapsdt";                                                     \
  992: .balign 4;                                                            \
  993: _SDT_ASM_ADDRESS 990b;                                                \
  _SDT_ASM_ADDRESS _.stapsdt.base;                                           \
  _SDT_ASM_SEMAPHORE(provider, name);                                        \
  .asciz #provider;                                                          \
  .asciz #name;                                                              \
  .asciz args;                                                               \
  994: .balign 4;                                                            \
  .popsection
#define STAP_PROBE(provider, name) _SDT_ASM_PROBE(provider, name, "")
#define STAP_PROBE0(provider, name) _SDT_ASM_PROBE(provider, name, "")
#define STAP_PROBE1(provider, name, a1)                                      \
  _SDT_ASM_PROBE(provider, name, _SDT_ASM_STR(a1))
#define STAP_PROBE2(provider, name, a1, a2)                                  \
  _SDT_ASM_PROBE(provider, name, _SDT_ASM_STR(a1 a2))
#define STAP_PROBE3(provider, name, a1, a2, a3)                              \
  _SDT_ASM_PROBE(provider, name, _SDT_ASM_STR(a1 a2 a3))
#define STAP_PROBE4(provider, name, a1, a2, a3, a4)                          \
  _SDT_ASM_PROBE(provider, name, _SDT_ASM_STR(a1 a2 a3 a4))
#define STAP_PROBE5(provider, name, a1, a2, a3, a4, a5)                      \
  _SDT_ASM_PROBE(provider, name, _SDT_ASM_STR(a1 a2 a3 a4 a5))
#define STAP_PROBE6(provider, name, a1, a2, a3, a4, a5, a6)                  \
  _SDT_ASM_PROBE(provider, name, _SDT_ASM_STR(a1 a2 a3 a4 a5 a6))
#define STAP_PROBE7(provider, name, a1, a2, a3, a4, a5, a6, a7)              \
  _SDT_ASM_PROBE(provider, name, _SDT_ASM_STR(a1 a2 a3 a4 a5 a6 a7))
#define STAP_PROBE8(provider, name, a1, a2, a3, a4, a5, a6, a7, a8)          \
  _SDT_ASM_PROBE(provider, name, _SDT_ASM_STR(a1 a2 a3 a4 a5 a6 a7 a8))
#define STAP_PROBE9(provider, name, a1, a2, a3, a4, a5, a6, a7, a8, a9)      \
  _SDT_ASM_PROBE(provider, name, _SDT_ASM_STR(a1 a2 a3 a4 a5 a6 a7 a8 a9))
#define STAP_PROBE10(provider, name, a1, a2, a3, a4, a5, a6, a7, a8, a9,     \
                     a10)                                                    \
  _SDT_ASM_PROBE(provider, name,                                             \
                 _SDT_ASM_STR(a1 a2 a3 a4 a5 a6 a7 a8 a9 a10))
#define STAP_PROBE11(provider, name, a1, a2, a3, a4, a5, a6, a7, a8, a9,     \
                     a10, a11)                                               \
  _SDT_ASM_PROBE(provider, name,                                             \
                 _SDT_ASM_STR(a1 a2 a3 a4 a5 a6 a7 a8 a9 a10 a11))
#define STAP_PROBE12(provider, name, a1, a2, a3, a4, a5, a6, a7, a8, a9,     \
                     a10, a11, a12)                                          \
  _SDT_ASM_PROBE(provider, name,                                             \
                 _SDT_ASM_STR(a1 a2 a3 a4 a5 a6 a7 a8 a9 a10 a11 a12))
#endif /* __ASSEMBLER__ */

/* DTrace spellings. */
#define DTRACE_PROBE(provider, name) STAP_PROBE(provider, name)
#define DTRACE_PROBE1(provider, name, a1) STAP_PROBE1(provider, name, a1)
#define DTRACE_PROBE2(provider, name, a1, a2)                                \
  STAP_PROBE2(provider, name, a1, a2)
#define DTRACE_PROBE3(provider, name, a1, a2, a3)                            \
  STAP_PROBE3(provider, name, a1, a2, a3)
#define DTRACE_PROBE4(provider, name, a1, a2, a3, a4)                        \
  STAP_PROBE4(provider, name, a1, a2, a3, a4)
#define DTRACE_PROBE5(provider, name, a1, a2, a3, a4, a5)                    \
  STAP_PROBE5(provider, name, a1, a2, a3, a4, a5)
#define DTRACE_PROBE6(provider, name, a1, a2, a3, a4, a5, a6)                \
  STAP_PROBE6(provider, name, a1, a2, a3, a4, a5, a6)
#define DTRACE_PROBE7(provider, name, a1, a2, a3, a4, a5, a6, a7)            \
  STAP_PROBE7(provider, name, a1, a2, a3, a4, a5, a6, a7)
#define DTRACE_PROBE8(provider, name, a1, a2, a3, a4, a5, a6, a7, a8)        \
  STAP_PROBE8(provider, name, a1, a2, a3, a4, a5, a6, a7, a8)
#define DTRACE_PROBE9(provider, name, a1, a2, a3, a4, a5, a6, a7, a8, a9)    \
  STAP_PROBE9(provider, name, a1, a2, a3, a4, a5, a6, a7, a8, a9)
#define DTRACE_PROBE10(provider, name, a1, a2, a3, a4, a5, a6, a7, a8, a9,   \
                       a10)                                                  \
  STAP_PROBE10(provider, name, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10)
#define DTRACE_PROBE11(provider, name, a1, a2, a3, a4, a5, a6, a7, a8, a9,   \
                       a10, a11)                                             \
  STAP_PROBE11(provider, name, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11)
#define DTRACE_PROBE12(provider, name, a1, a2, a3, a4, a5, a6, a7, a8, a9,   \
                       a10, a11, a12)                                        \
  STAP_PROBE12(provider, name, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, \
               a12)

#endif /* _SYS_SDT_H */
