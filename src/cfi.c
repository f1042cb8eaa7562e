/*
 * The fast stack walker (cfi.h): CFI rules reduced and cached per thread.
 *
 * A walk starts in fb_cfi_backtrace itself (its own pc, rsp and rbp read
 * by one asm statement, so they describe the same instruction) and steps
 * caller by caller: CFA = rsp or rbp + offset, the return address is the
 * word below the CFA, rbp is reloaded if the frame saved it, and the
 * caller's rsp is the CFA.  The rule for a return address comes from the
 * FDE covering ra - 1 (the call instruction; ra itself may be the next
 * function's first byte), interpreted here the way DWARF 5 section 6.4
 * says, tracking only the CFA, rbp (DWARF register 6) and the return
 * address (16); other registers' rules are read past.
 *
 * The per-thread cache is direct-mapped, 4096 rules keyed by address,
 * negative results included (no FDE: the walk ends there, as libgcc's
 * does; unsupported: the caller falls back to libgcc).  Cached rules
 * describe code that may be unmapped by dlclose and replaced by other
 * code at the same address, so a walk first compares the loader's count
 * of removed objects (dl_iterate_phdr's dlpi_subs) with the one the cache
 * was filled under, and empties it on a change.
 */
#define _GNU_SOURCE
#include "cfi.h"

#include <link.h>
#include <string.h>
#include <sys/mman.h>

#include "fb.h"

/* libgcc's FDE lookup (libgcc_eh.a, linked statically and hidden, as in
 * track.c): through _dl_find_object in glibc 2.35+, lock-free.  bases:
 * the text and data bases for relative encodings, and the start of the
 * function the FDE covers. */
struct fb_eh_bases {
    void *tbase, *dbase, *func;
};
const void *_Unwind_Find_FDE(void *pc, struct fb_eh_bases *bases);
__asm__(".hidden _Unwind_Find_FDE");

enum { R_OK = 1, R_END, R_NOFDE, R_UNSUP };

/* One frame's rule: CFA = (rbp if cfa_rbp else rsp) + cfa_off; the
 * return address at CFA - 8; rbp saved at CFA + rbp_off if rbp_saved. */
struct rule {
    int32_t cfa_off;
    int16_t rbp_off;
    uint8_t kind;            /* R_* */
    uint8_t cfa_rbp : 1, rbp_saved : 1;
};

#define FB_CFI_RULES 4096

struct entry {
    uintptr_t pc;            /* 0: empty */
    struct rule r;
};

static __thread struct entry *cfi_cache __attribute__((tls_model("initial-exec")));
static __thread unsigned long long cfi_subs __attribute__((tls_model("initial-exec")));

/* ---------------------------------------------------------------------- */
/* DWARF reading, bounded by end: *bad is set past it                      */

struct rd {
    const uint8_t *p, *end;
    int bad;
};

static uint64_t uleb(struct rd *r)
{
    uint64_t v = 0;
    unsigned shift = 0;
    while (r->p < r->end) {
        uint8_t b = *r->p++;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80))
            return v;
    }
    r->bad = 1;
    return 0;
}

static int64_t sleb(struct rd *r)
{
    int64_t v = 0;
    unsigned shift = 0;
    while (r->p < r->end) {
        uint8_t b = *r->p++;
        if (shift < 64)
            v |= (int64_t)((uint64_t)(b & 0x7f) << shift);
        shift += 7;
        if (!(b & 0x80)) {
            if (shift < 64 && (b & 0x40))
                v |= -((int64_t)1 << shift);
            return v;
        }
    }
    r->bad = 1;
    return 0;
}

static void skip(struct rd *r, uint64_t n)
{
    if (n > (uint64_t)(r->end - r->p))
        r->bad = 1;
    else
        r->p += n;
}

static uint64_t fixed(struct rd *r, unsigned n)   /* little-endian, n <= 8 */
{
    uint64_t v = 0;
    if ((size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return 0;
    }
    memcpy(&v, r->p, n);
    r->p += n;
    return v;
}

/* Skips a pointer in DW_EH_PE encoding enc (its format, low 4 bits). */
static void skip_encoded(struct rd *r, uint8_t enc)
{
    if (enc == 0xff)                 /* DW_EH_PE_omit */
        return;
    switch (enc & 0x0f) {
    case 0x00: case 0x04: case 0x0c: skip(r, 8); break;   /* absptr, 8-byte */
    case 0x02: case 0x0a: skip(r, 2); break;
    case 0x03: case 0x0b: skip(r, 4); break;
    case 0x01: uleb(r); break;
    case 0x09: sleb(r); break;
    default: r->bad = 1;
    }
}

/* ---------------------------------------------------------------------- */
/* Interpreting the CFI program up to a target address                    */

enum { REG_SAME = 0, REG_OFFSET, REG_UNDEF, REG_UNSUP };

struct cfa_state {
    uint64_t cfa_reg;
    int64_t cfa_off;
    uint8_t cfa_unsup;
    uint8_t rbp_how, ra_how;
    int64_t rbp_off, ra_off;
};

#define FB_DW_RBP 6
#define FB_DW_RSP 7
#define FB_DW_RA 16

static void set_reg(struct cfa_state *s, uint64_t reg, uint8_t how, int64_t off)
{
    if (reg == FB_DW_RBP) {
        s->rbp_how = how;
        s->rbp_off = off;
    } else if (reg == FB_DW_RA) {
        s->ra_how = how;
        s->ra_off = off;
    }
}

static void restore_reg(struct cfa_state *s, const struct cfa_state *init, uint64_t reg)
{
    if (reg == FB_DW_RBP) {
        s->rbp_how = init->rbp_how;
        s->rbp_off = init->rbp_off;
    } else if (reg == FB_DW_RA) {
        s->ra_how = init->ra_how;
        s->ra_off = init->ra_off;
    }
}

/*
 * Runs instructions from r until the location would pass target (loc
 * starts at *loc; advances scale by code_align).  Returns 0 when done or
 * stopped, -1 on anything not understood.
 */
static int run(struct rd *r, struct cfa_state *s, const struct cfa_state *init,
               uintptr_t *loc, uintptr_t target, uint64_t code_align,
               int64_t data_align)
{
    struct cfa_state stack[8];
    unsigned depth = 0;
    while (r->p < r->end && !r->bad) {
        uint8_t op = *r->p++;
        uint64_t reg, delta = 0;
        switch (op & 0xc0) {
        case 0x40:                   /* DW_CFA_advance_loc */
            delta = (op & 0x3f) * code_align;
            goto advance;
        case 0x80:                   /* DW_CFA_offset */
            set_reg(s, op & 0x3f, REG_OFFSET, (int64_t)uleb(r) * data_align);
            continue;
        case 0xc0:                   /* DW_CFA_restore */
            restore_reg(s, init, op & 0x3f);
            continue;
        }
        switch (op) {
        case 0x00:                   /* nop */
            break;
        case 0x02: delta = fixed(r, 1) * code_align; goto advance;
        case 0x03: delta = fixed(r, 2) * code_align; goto advance;
        case 0x04: delta = fixed(r, 4) * code_align; goto advance;
        case 0x05:                   /* offset_extended */
            reg = uleb(r);
            set_reg(s, reg, REG_OFFSET, (int64_t)uleb(r) * data_align);
            break;
        case 0x06:                   /* restore_extended */
            restore_reg(s, init, uleb(r));
            break;
        case 0x07:                   /* undefined */
            set_reg(s, uleb(r), REG_UNDEF, 0);
            break;
        case 0x08:                   /* same_value */
            set_reg(s, uleb(r), REG_SAME, 0);
            break;
        case 0x09:                   /* register */
            reg = uleb(r);
            uleb(r);
            set_reg(s, reg, REG_UNSUP, 0);
            break;
        case 0x0a:                   /* remember_state */
            if (depth == 8)
                return -1;
            stack[depth++] = *s;
            break;
        case 0x0b:                   /* restore_state, the CFA rule too
                                      * (as GCC's and LLVM's unwinders:
                                      * epilogues in mid-function rely on
                                      * it) */
            if (depth == 0)
                return -1;
            *s = stack[--depth];
            break;
        case 0x0c:                   /* def_cfa */
            s->cfa_reg = uleb(r);
            s->cfa_off = (int64_t)uleb(r);
            s->cfa_unsup = 0;
            break;
        case 0x0d:                   /* def_cfa_register */
            s->cfa_reg = uleb(r);
            break;
        case 0x0e:                   /* def_cfa_offset */
            s->cfa_off = (int64_t)uleb(r);
            break;
        case 0x0f:                   /* def_cfa_expression (PLT stubs) */
            skip(r, uleb(r));
            s->cfa_unsup = 1;
            break;
        case 0x10:                   /* expression */
        case 0x16:                   /* val_expression */
            reg = uleb(r);
            skip(r, uleb(r));
            set_reg(s, reg, REG_UNSUP, 0);
            break;
        case 0x11:                   /* offset_extended_sf */
            reg = uleb(r);
            set_reg(s, reg, REG_OFFSET, sleb(r) * data_align);
            break;
        case 0x12:                   /* def_cfa_sf */
            s->cfa_reg = uleb(r);
            s->cfa_off = sleb(r) * data_align;
            s->cfa_unsup = 0;
            break;
        case 0x13:                   /* def_cfa_offset_sf */
            s->cfa_off = sleb(r) * data_align;
            break;
        case 0x14:                   /* val_offset */
            reg = uleb(r);
            uleb(r);
            set_reg(s, reg, REG_UNSUP, 0);
            break;
        case 0x15:                   /* val_offset_sf */
            reg = uleb(r);
            sleb(r);
            set_reg(s, reg, REG_UNSUP, 0);
            break;
        case 0x2e:                   /* GNU_args_size */
            uleb(r);
            break;
        case 0x2f:                   /* GNU_negative_offset_extended */
            reg = uleb(r);
            set_reg(s, reg, REG_OFFSET, -(int64_t)uleb(r) * data_align);
            break;
        default:                     /* set_loc and the rest */
            return -1;
        }
        continue;
    advance:
        if (*loc + delta > target)
            return 0;
        *loc += delta;
    }
    return r->bad ? -1 : 0;
}

/* The rule at code address target (a return address - 1, or our own pc). */
static FB_NOINLINE struct rule compute(uintptr_t target)
{
    struct rule out = {0, 0, R_UNSUP, 0, 0};
    struct fb_eh_bases bases;
    const uint8_t *fde = _Unwind_Find_FDE((void *)target, &bases);
    if (!fde) {
        out.kind = R_NOFDE;
        return out;
    }
    uint32_t len, cie_len;
    int32_t cie_off;
    memcpy(&len, fde, 4);
    memcpy(&cie_off, fde + 4, 4);
    if (len == 0xffffffffu || len < 8 || cie_off <= 0)
        return out;                  /* 64-bit DWARF, or not an FDE */
    const uint8_t *cie = fde + 4 - cie_off;
    memcpy(&cie_len, cie, 4);
    if (cie_len == 0xffffffffu || cie_len < 8)
        return out;

    /* The CIE: augmentation, alignment factors, return address column,
     * the FDE pointer encoding; no signal frames. */
    struct rd r = {cie + 8, cie + 4 + cie_len, 0};
    uint8_t version = (uint8_t)fixed(&r, 1);
    const char *aug = (const char *)r.p;
    size_t auglen = strnlen(aug, (size_t)(r.end - r.p));
    skip(&r, auglen + 1);
    if (r.bad || (version != 1 && version != 3) || (auglen && aug[0] != 'z'))
        return out;
    uint64_t code_align = uleb(&r);
    int64_t data_align = sleb(&r);
    uint64_t ra_reg = version == 1 ? fixed(&r, 1) : uleb(&r);
    if (ra_reg != FB_DW_RA)
        return out;
    uint8_t fde_enc = 0;
    if (auglen) {
        uint64_t n = uleb(&r);
        const uint8_t *data_end = r.p + n;
        for (size_t i = 1; i < auglen && !r.bad; i++) {
            switch (aug[i]) {
            case 'R': fde_enc = (uint8_t)fixed(&r, 1); break;
            case 'L': fixed(&r, 1); break;
            case 'P': skip_encoded(&r, (uint8_t)fixed(&r, 1)); break;
            case 'B': break;
            default: return out;     /* 'S' (signal frame) and unknowns */
            }
        }
        if (r.bad || data_end > r.end)
            return out;
        r.p = data_end;
    }
    struct cfa_state init = {FB_DW_RSP, 8, 0, REG_SAME, REG_UNDEF, 0, 0};
    uintptr_t loc = (uintptr_t)bases.func;
    if (run(&r, &init, &init, &loc, UINTPTR_MAX, code_align, data_align) != 0)
        return out;

    /* The FDE: past its address range and augmentation data. */
    struct rd f = {fde + 8, fde + 4 + len, 0};
    skip_encoded(&f, fde_enc);
    skip_encoded(&f, fde_enc & 0x0f);
    if (auglen)
        skip(&f, uleb(&f));
    if (f.bad)
        return out;
    struct cfa_state s = init;
    loc = (uintptr_t)bases.func;
    if (run(&f, &s, &init, &loc, target, code_align, data_align) != 0)
        return out;

    if (s.ra_how == REG_UNDEF) {     /* the outermost frame (_start) */
        out.kind = R_END;
        return out;
    }
    if (s.cfa_unsup || (s.cfa_reg != FB_DW_RSP && s.cfa_reg != FB_DW_RBP) ||
        s.ra_how != REG_OFFSET || s.ra_off != -8 || s.cfa_off < 8 ||
        s.cfa_off > INT32_MAX || (s.rbp_how != REG_SAME && s.rbp_how != REG_OFFSET) ||
        (s.rbp_how == REG_OFFSET && (s.rbp_off < INT16_MIN || s.rbp_off >= 0)))
        return out;
    out.kind = R_OK;
    out.cfa_off = (int32_t)s.cfa_off;
    out.cfa_rbp = s.cfa_reg == FB_DW_RBP;
    out.rbp_saved = s.rbp_how == REG_OFFSET;
    out.rbp_off = (int16_t)s.rbp_off;
    return out;
}

static inline struct rule rule_for(struct entry *c, uintptr_t pc)
{
    struct entry *e = &c[(pc ^ (pc >> 12)) & (FB_CFI_RULES - 1)];
    if (fb_likely(e->pc == pc))
        return e->r;
    struct rule r = compute(pc);
    e->pc = pc;
    e->r = r;
    return r;
}

/* ---------------------------------------------------------------------- */
/* The walk                                                                */

static int subs_of(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    *(unsigned long long *)arg = info->dlpi_subs;
    return 1;
}

static FB_NOINLINE FB_COLD struct entry *cache_open(void)
{
    void *p = mmap(NULL, FB_CFI_RULES * sizeof(struct entry), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : (cfi_cache = p);
}

void fb_cfi_flush(void)
{
    if (cfi_cache)
        memset(cfi_cache, 0, FB_CFI_RULES * sizeof(struct entry));
}

/* A frame larger than this, or a CFA below the stack pointer, means a
 * rule does not describe the stack: give up rather than read there. */
#define FB_CFI_MAX_FRAME ((uintptr_t)1 << 24)

FB_NOINLINE int fb_cfi_backtrace(uintptr_t *frames, uintptr_t *slots, unsigned max,
                                 int (*skip_fn)(uintptr_t ip))
{
    struct entry *c = cfi_cache;
    if (fb_unlikely(!c) && !(c = cache_open()))
        return -1;
    unsigned long long subs = 0;
    dl_iterate_phdr(subs_of, &subs);
    if (fb_unlikely(subs != cfi_subs)) {
        fb_cfi_flush();
        cfi_subs = subs;
    }

    uintptr_t pc, sp, bp;
    __asm__ volatile("lea 0f(%%rip), %0\n0:\n\tmov %%rsp, %1\n\tmov %%rbp, %2"
                     : "=&r"(pc), "=&r"(sp), "=&r"(bp));
    unsigned n = 0;
    for (unsigned steps = 0; steps < max + 256; steps++) {
        struct rule r = rule_for(c, pc);
        if (r.kind == R_END || r.kind == R_NOFDE)
            break;
        if (r.kind != R_OK)
            return -1;
        uintptr_t cfa = (r.cfa_rbp ? bp : sp) + (uintptr_t)(intptr_t)r.cfa_off;
        if (cfa <= sp || cfa - sp > FB_CFI_MAX_FRAME || (cfa & 7))
            return -1;
        uintptr_t slot = cfa - sizeof(uintptr_t);
        uintptr_t ra = *(const uintptr_t *)slot;
        if (r.rbp_saved)
            bp = *(const uintptr_t *)(cfa + (intptr_t)r.rbp_off);
        sp = cfa;
        if (!ra)
            break;
        if (!(n == 0 && skip_fn && skip_fn(ra))) {
            frames[n] = ra;
            slots[n] = slot;
            if (++n == max)
                break;
        }
        pc = ra - 1;                 /* inside the call instruction */
    }
    return (int)n;
}

/* ---------------------------------------------------------------------- */
/* One frame's CFA, for lifetime routing's context (alloc.c)               */

int32_t fb_cfi_rsp_offset(uintptr_t pc)
{
    struct rule r = compute(pc);
    if (r.kind != R_OK || r.cfa_rbp || (r.cfa_off & 7) || r.cfa_off > (1 << 16))
        return 0;
    return r.cfa_off;
}
