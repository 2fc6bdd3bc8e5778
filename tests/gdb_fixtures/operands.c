/* GDB plugin fixture: one probe, `ops:all`, with 18 arguments in every x86-64
 * operand form, written as a hand-made .note.stapsdt (sys/sdt.h stops at 12
 * arguments and lets the compiler choose the operands). fire() loads known
 * values into the registers the note names; main prints what each argument
 * must read as, one `expect N VALUE` line per argument. */
#include <stdint.h>
#include <stdio.h>

int64_t g_counter = -123456789012345;
int32_t g_table[4] = {10, -20, 30, -40};
int32_t g_ints[5] = {100, 200, 300, 400, 500};
int64_t g_longs[3] = {0x1111, -0x2222, 0x3333};
float g_f = 1.25f;
double g_d = 2.5;

void fire(void);

asm(".text\n"
    ".globl fire\n"
    ".type fire, @function\n"
    "fire:\n"
    "  push %rbx\n"
    "  push %r12\n"
    "  movabs $0x1122334455667788, %rax\n"
    "  mov $-5, %r12\n"
    "  lea g_longs(%rip), %rbx\n"
    "  lea g_longs+16(%rip), %rsi\n"
    "  lea g_ints(%rip), %rcx\n"
    "  mov $3, %rdx\n"
    "  movsd g_d(%rip), %xmm0\n"
    "  movss g_f(%rip), %xmm1\n"
    "990: nop\n"
    "  .pushsection .note.stapsdt,\"\",\"note\"\n"
    "  .balign 4\n"
    "  .4byte 992f-991f, 994f-993f, 3\n"
    "991: .asciz \"stapsdt\"\n"
    "992: .balign 4\n"
    "993: .8byte 990b\n"
    "  .8byte _.stapsdt.base\n"
    "  .8byte 0\n"
    "  .asciz \"ops\"\n"
    "  .asciz \"all\"\n"
    "  .asciz \"8@%rax -4@%eax 1@%ah -1@%al 2@%ax -8@%r12 -4@%r12d -1@%r12b "
    "-8@0x8(%rbx) -8@-16(%rsi) -4@(%rcx,%rdx,4) -8@g_counter(%rip) "
    "-4@g_table+8(%rip) 8f@%xmm0 4f@%xmm1 8f@g_d(%rip) -4@$-42 4f@g_f(%rip)\"\n"
    "994: .balign 4\n"
    "  .popsection\n"
    "  pop %r12\n"
    "  pop %rbx\n"
    "  ret\n"
    "  .size fire, .-fire\n"
    "  .ifndef _.stapsdt.base\n"
    "  .pushsection .stapsdt.base,\"aG\",\"progbits\",.stapsdt.base,comdat\n"
    "  .weak _.stapsdt.base\n"
    "  .hidden _.stapsdt.base\n"
    "_.stapsdt.base: .space 1\n"
    "  .size _.stapsdt.base, 1\n"
    "  .popsection\n"
    "  .endif\n");

int main(void)
{
    uint64_t rax = 0x1122334455667788ull;
    int64_t r12 = -5;
    int n = 0;
    printf("expect %d %llu\n", n++, (unsigned long long)rax);           /* 8@%rax */
    printf("expect %d %d\n", n++, (int32_t)(uint32_t)rax);              /* -4@%eax */
    printf("expect %d %u\n", n++, (unsigned)(uint8_t)(rax >> 8));       /* 1@%ah */
    printf("expect %d %d\n", n++, (int8_t)(uint8_t)rax);                /* -1@%al */
    printf("expect %d %u\n", n++, (unsigned)(uint16_t)rax);             /* 2@%ax */
    printf("expect %d %lld\n", n++, (long long)r12);                    /* -8@%r12 */
    printf("expect %d %d\n", n++, (int32_t)r12);                        /* -4@%r12d */
    printf("expect %d %d\n", n++, (int8_t)r12);                         /* -1@%r12b */
    printf("expect %d %lld\n", n++, (long long)g_longs[1]);             /* -8@0x8(%rbx) */
    printf("expect %d %lld\n", n++, (long long)g_longs[0]);             /* -8@-16(%rsi) */
    printf("expect %d %d\n", n++, g_ints[3]);                           /* -4@(%rcx,%rdx,4) */
    printf("expect %d %lld\n", n++, (long long)g_counter);              /* -8@g_counter(%rip) */
    printf("expect %d %d\n", n++, g_table[2]);                          /* -4@g_table+8(%rip) */
    printf("expect %d %g\n", n++, g_d);                                 /* 8f@%xmm0 */
    printf("expect %d %g\n", n++, (double)g_f);                         /* 4f@%xmm1 */
    printf("expect %d %g\n", n++, g_d);                                 /* 8f@g_d(%rip) */
    printf("expect %d %d\n", n++, -42);                                 /* -4@$-42 */
    printf("expect %d %g\n", n++, (double)g_f);                         /* 4f@g_f(%rip) */
    printf("expect argc %d\n", n);
    fflush(stdout);
    fire();
    puts("fired");
    return 0;
}
