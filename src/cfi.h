/*
 * A fast stack walker for x86-64: DWARF call-frame information (the
 * program's .eh_frame, found through libgcc's _Unwind_Find_FDE) reduced,
 * per return address, to the three numbers a walk needs (where the CFA
 * is, where the caller's rbp was saved), and cached per thread.
 *
 * libgcc's _Unwind_Backtrace re-interprets each frame's CFI program on
 * every walk (about 1,500 instructions a frame, most of a tracked
 * python3's start-up); with the rule cached, a frame is a few loads.
 * Frames whose rules need more than that (signal frames, CFA
 * expressions, rbp or the return address kept in another register) make
 * the walk give up, and the caller falls back to libgcc, which handles
 * everything.  The LLVM and elfutils unwinders cache the same way.
 */
#ifndef FB_CFI_H
#define FB_CFI_H

#include <stdint.h>

/*
 * Walks the calling thread's stack, from the caller of this function:
 * stores up to max return addresses in frames[] and, in slots[], the
 * stack address each was read from (its callee's CFA - 8), skipping
 * leading frames for which skip(ip) is non-zero.  Returns the number of
 * frames, or -1 if a frame needs the full unwinder.  Allocates nothing
 * (its per-thread cache is mmap'd on first use); async-signal-safe apart
 * from that first mmap.
 */
int fb_cfi_backtrace(uintptr_t *frames, uintptr_t *slots, unsigned max,
                     int (*skip)(uintptr_t ip));

/* The frame executing at pc (a return address - 1): its CFA is the
 * stack pointer at pc plus the value returned (8..65536, a multiple of
 * 8), and its caller's return address lies at CFA - 8; 0 if its rule is
 * rbp-based or more than that.  Computed every call (not cached); reads
 * only the CFI, allocates nothing. */
int32_t fb_cfi_rsp_offset(uintptr_t pc);

/* Forgets the calling thread's cached rules (code was unmapped). */
void fb_cfi_flush(void);

#endif
