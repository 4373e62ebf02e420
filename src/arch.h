/* SPDX-License-Identifier: MIT */
/*
 * arch.h - what the library assumes of the processor and its ABI, in one
 * place: x86-64, which it is built and tested on, and aarch64 where the
 * answer is plain; any other architecture stops the build here.
 *
 * Invariants: each definition is a constant or a one-instruction inline, so
 * that code using it compiles to what it did with the value written in
 * place; nothing here calls out of memtrace except mt__page_size on
 * aarch64 (getauxval: a read of memory libc set up at start, no lock).
 *
 * Still x86-64 only, and said where it is: unwind.c's frame-size table
 * takes a return address to lie just below its caller's stack pointer,
 * which a call pushes there (on aarch64 no frame would qualify and every
 * walk would be libunwind's); init.c's exit_caller_sp, attach.c's
 * plt_stub and trigger.c's interrupted_safely read x86-64 instructions
 * (MT_ARCH_X86_64 turns the first two off elsewhere; the third has its own
 * fallback).
 */
#ifndef MT_ARCH_H
#define MT_ARCH_H

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__)

#define MT_ARCH_X86_64 1
/* User space with 4-level paging: addresses below 2^47. */
#define MT_VA_BITS 47
/* The registers of a ucontext_t (a signal's, or libunwind's context). */
#define MT_UC_PC(uc) ((uc)->uc_mcontext.gregs[REG_RIP])
#define MT_UC_SP(uc) ((uc)->uc_mcontext.gregs[REG_RSP])
#define MT_UC_FP(uc) ((uc)->uc_mcontext.gregs[REG_RBP])
/* The frame pointer's libunwind register number. */
#define MT_UNW_FP UNW_X86_64_RBP
/* The relocations that fill a GOT slot with a function's address. */
#define MT_R_JUMP_SLOT R_X86_64_JUMP_SLOT
#define MT_R_GLOB_DAT R_X86_64_GLOB_DAT

/* Inside a spin loop: lets the sibling hyperthread run. */
static inline void mt__cpu_relax(void)
{
	__builtin_ia32_pause();
}

/* The page size: always 4 KiB. */
static inline size_t mt__page_size(void)
{
	return 4096;
}

/* The caller's stack pointer, just above a frame built with frame
 * pointers: the saved rbp at the frame address, the return address above
 * it, then the caller's frame. */
static inline uintptr_t mt__frame_caller_sp(uintptr_t frame)
{
	return frame + 16;
}

#elif defined(__aarch64__)

#include <sys/auxv.h>

#define MT_ARCH_X86_64 0
/* Linux's default user space with 4 KiB pages: addresses below 2^48. */
#define MT_VA_BITS 48
#define MT_UC_PC(uc) ((uc)->uc_mcontext.pc)
#define MT_UC_SP(uc) ((uc)->uc_mcontext.sp)
#define MT_UC_FP(uc) ((uc)->uc_mcontext.regs[29])
#define MT_UNW_FP UNW_AARCH64_X29
#define MT_R_JUMP_SLOT R_AARCH64_JUMP_SLOT
#define MT_R_GLOB_DAT R_AARCH64_GLOB_DAT

static inline void mt__cpu_relax(void)
{
	__asm__ volatile("yield");
}

/* 4, 16 or 64 KiB, as the kernel was built. */
static inline size_t mt__page_size(void)
{
	return (size_t)getauxval(AT_PAGESZ);
}

/* Above the frame record (x29, x30): the frame's own locals may lie
 * between it and the caller's stack pointer, so this is a lower bound. */
static inline uintptr_t mt__frame_caller_sp(uintptr_t frame)
{
	return frame + 16;
}

#else
#error "memtrace supports x86-64 and aarch64 only (src/arch.h)"
#endif

/* The slot of the return address into the caller, in a frame built with
 * frame pointers: just above the saved frame pointer the frame address
 * points at (x86-64: push rbp; aarch64: the frame record's x30). */
static inline uintptr_t mt__frame_ra_slot(uintptr_t frame)
{
	return frame + 8;
}

#endif
