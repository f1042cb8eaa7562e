/*
 * pprof writer: profile.proto, protobuf-encoded, gzipped with stored
 * blocks.  See pprof.h for the interface and why it is built this way.
 *
 * profile.proto (github.com/google/pprof, proto/profile.proto), the
 * fields used here:
 *   Profile   1 sample_type (ValueType)  2 sample  3 mapping  4 location
 *             5 function  6 string_table  9 time_nanos  11 period_type
 *             12 period  13 comment (string index)  14 default_sample_type
 *   ValueType 1 type  2 unit                       (string indices)
 *   Sample    1 location_id (packed, leaf first)  2 value (packed)  3 label
 *   Label     1 key  2 str                         (string indices)
 *   Mapping   1 id  2 memory_start  3 memory_limit  4 file_offset
 *             5 filename  6 build_id  7 has_functions  8 has_filenames
 *             9 has_line_numbers  10 has_inline_frames
 *   Location  1 id  2 mapping_id  3 address  4 line (Line)
 *   Line      1 function_id  2 line
 *   Function  1 id  2 name  3 system_name  4 filename  5 start_line
 * string_table[0] must be "".  Readers resolve string indices after the
 * whole message is decoded, so entries may be interleaved with the
 * messages that use them (Go's profile package does exactly that).
 */
#include "pprof.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fb.h"
#include "fmt.h"
#include "options.h"
#include "platform.h"
#include "report.h"

extern char *program_invocation_name;

/* ---------------------------------------------------------------------- */
/* gzip with stored deflate blocks (RFC 1951 3.2.4, RFC 1952)              */

static uint32_t crc_table[256];

uint32_t fb_gz_crc32(uint32_t crc, const void *p, size_t n)
{
    if (!crc_table[1]) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
            crc_table[i] = c;
        }
    }
    const unsigned char *s = p;
    crc = ~crc;
    while (n--)
        crc = crc_table[(crc ^ *s++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static void gz_raw(struct fb_gz *z, const void *p, size_t n)
{
    if (!z->err && fb_fmt_write_all(z->fd, p, n) != 0)
        z->err = 1;
}

/* One stored block: header byte (BFINAL, BTYPE 00, padded to a byte),
 * LEN and its complement, little-endian, then the bytes as they are. */
static void gz_block(struct fb_gz *z, int final)
{
    unsigned char h[5] = {(unsigned char)(final ? 1 : 0), (unsigned char)(z->n & 0xff),
                          (unsigned char)(z->n >> 8), (unsigned char)(~z->n & 0xff),
                          (unsigned char)((~z->n >> 8) & 0xff)};
    gz_raw(z, h, sizeof h);
    gz_raw(z, z->buf, z->n);
    z->n = 0;
}

void fb_gz_begin(struct fb_gz *z, int fd)
{
    /* magic, CM=8 (deflate), no flags, no mtime, XFL 0, OS 3 (Unix) */
    static const unsigned char hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    z->fd = fd;
    z->err = 0;
    z->crc = 0;
    z->size = 0;
    z->n = 0;
    gz_raw(z, hdr, sizeof hdr);
}

void fb_gz_write(struct fb_gz *z, const void *p, size_t n)
{
    const unsigned char *s = p;
    z->crc = fb_gz_crc32(z->crc, s, n);
    z->size += (uint32_t)n;
    while (n) {
        size_t k = sizeof z->buf - z->n;
        if (k > n)
            k = n;
        memcpy(z->buf + z->n, s, k);
        z->n += (uint32_t)k;
        s += k;
        n -= k;
        if (z->n == sizeof z->buf)
            gz_block(z, 0);
    }
}

int fb_gz_end(struct fb_gz *z)
{
    gz_block(z, 1);
    unsigned char t[8];
    for (int i = 0; i < 4; i++) {
        t[i] = (unsigned char)(z->crc >> (8 * i));
        t[4 + i] = (unsigned char)(z->size >> (8 * i));
    }
    gz_raw(z, t, sizeof t);
    return z->err ? -1 : 0;
}

/* ---------------------------------------------------------------------- */
/* Protobuf encoding                                                       */

enum { PB_VARINT = 0, PB_LEN = 2 };

/* A message being built (nested messages need their length first).  The
 * largest is a Sample: 64 location ids and 4 values of at most 10 bytes,
 * and a label, well under the 2 KiB here; strings never go through it. */
struct pb {
    size_t n;
    unsigned char b[2048];
};

static void pb_varint(struct pb *m, uint64_t v)
{
    while (m->n + 10 < sizeof m->b) {
        unsigned char c = v & 0x7f;
        v >>= 7;
        m->b[m->n++] = c | (v ? 0x80 : 0);
        if (!v)
            return;
    }
}

static void pb_key(struct pb *m, unsigned field, unsigned wire)
{
    pb_varint(m, (uint64_t)field << 3 | wire);
}

/* A varint field; proto3 leaves zero values out. */
static void pb_uint(struct pb *m, unsigned field, uint64_t v)
{
    if (!v)
        return;
    pb_key(m, field, PB_VARINT);
    pb_varint(m, v);
}

static void pb_bytes(struct pb *m, unsigned field, const void *p, size_t n)
{
    /* cannot happen (see above); if it did, drop the field whole rather
     * than write a length that does not match */
    if (m->n + 20 + n > sizeof m->b)
        return;
    pb_key(m, field, PB_LEN);
    pb_varint(m, n);
    memcpy(m->b + m->n, p, n);
    m->n += n;
}

static void pb_msg(struct pb *m, unsigned field, const struct pb *sub)
{
    pb_bytes(m, field, sub->b, sub->n);
}

/* ---------------------------------------------------------------------- */
/* Deduplication: 64-bit key -> id, open addressing, mmap-backed           */

struct table {
    uint64_t *keys, *vals;       /* val 0: empty slot */
    size_t cap, n;
};

static uint64_t mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

static int table_grow(struct table *t)
{
    size_t cap = t->cap ? t->cap * 2 : 1024;
    size_t bytes = cap * 2 * sizeof(uint64_t);
    uint64_t *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return -1;
    uint64_t *keys = mem, *vals = mem + cap;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->vals[i])
            continue;
        size_t j = mix(t->keys[i]) & (cap - 1);
        while (vals[j])
            j = (j + 1) & (cap - 1);
        keys[j] = t->keys[i];
        vals[j] = t->vals[i];
    }
    if (t->cap)
        munmap(t->keys, t->cap * 2 * sizeof(uint64_t));
    t->keys = keys;
    t->vals = vals;
    t->cap = cap;
    return 0;
}

/* The id stored for key, or 0; with add, stores a new id (n + 1) and sets
 * *added.  A full or unmappable table answers 0 (the caller then writes
 * a duplicate entry, which readers accept). */
static uint64_t table_get(struct table *t, uint64_t key, int add, int *added)
{
    if (added)
        *added = 0;
    if (add && (t->n + 1) * 2 > t->cap && table_grow(t) != 0)
        return 0;
    if (!t->cap)
        return 0;
    size_t j = mix(key) & (t->cap - 1);
    while (t->vals[j]) {
        if (t->keys[j] == key)
            return t->vals[j];
        j = (j + 1) & (t->cap - 1);
    }
    if (!add)
        return 0;
    t->keys[j] = key;
    t->vals[j] = ++t->n;
    *added = 1;
    return t->n;
}

static void table_free(struct table *t)
{
    if (t->cap)
        munmap(t->keys, t->cap * 2 * sizeof(uint64_t));
    memset(t, 0, sizeof *t);
}

/* FNV-1a, 64 bits: strings and functions are identified by their hash
 * (a collision, about n^2 / 2^65, would only merge two names). */
static uint64_t hash_str(const char *s, uint64_t h)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h * 0x100000001b3ull;          /* the terminator counts */
}

/* ---------------------------------------------------------------------- */
/* The profile being written                                               */

static struct {
    struct fb_gz z;
    struct table strings, functions, locations, mappings;
    int own_fd;                  /* we opened it: close at the end */
    int nvalues;                 /* 4 for leak reports, 2 otherwise */
    enum fb_pprof_report what;
    int64_t s_kind;
    char path[FB_OPT_PATH_MAX + 64];
} P FB_BIG_BSS;

/* A top-level field of Profile: straight into the gzip stream. */
static void emit(unsigned field, const struct pb *m)
{
    struct pb k;
    k.n = 0;
    pb_key(&k, field, PB_LEN);
    pb_varint(&k, m->n);
    fb_gz_write(&P.z, k.b, k.n);
    fb_gz_write(&P.z, m->b, m->n);
}

/* Index of s in string_table, appending it when new. */
static int64_t str(const char *s)
{
    int added;
    uint64_t id = table_get(&P.strings, hash_str(s, 0xcbf29ce484222325ull), 1, &added);
    if (id && !added)
        return (int64_t)id - 1;
    struct pb k;
    k.n = 0;
    size_t n = strlen(s);
    pb_key(&k, 6, PB_LEN);
    pb_varint(&k, n);
    fb_gz_write(&P.z, k.b, k.n);
    fb_gz_write(&P.z, s, n);
    /* ids count every entry written, duplicates included */
    return id ? (int64_t)id - 1 : (int64_t)(P.strings.n++);
}

static void value_type(unsigned field, const char *type, const char *unit)
{
    struct pb m;
    m.n = 0;
    int64_t t = str(type), u = str(unit);
    pb_uint(&m, 1, (uint64_t)t);
    pb_uint(&m, 2, (uint64_t)u);
    emit(field, &m);
}

/* What a module's ELF file says: its build id and the executable segment
 * holding off (module-relative), so pprof can map addresses to the file. */
struct elf_info {
    char build_id[2 * 64 + 1];
    uint64_t vaddr, memsz, offset;
    int found;
};

static void read_elf(const char *path, uint64_t off, struct elf_info *e)
{
    memset(e, 0, sizeof *e);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    Elf64_Ehdr eh;
    Elf64_Phdr ph[64];
    if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_phentsize != sizeof(Elf64_Phdr)) {
        close(fd);
        return;
    }
    unsigned nph = eh.e_phnum < 64 ? eh.e_phnum : 64;
    if (pread(fd, ph, nph * sizeof ph[0], (off_t)eh.e_phoff) != (ssize_t)(nph * sizeof ph[0])) {
        close(fd);
        return;
    }
    for (unsigned i = 0; i < nph; i++) {
        if (ph[i].p_type == PT_LOAD && (ph[i].p_flags & PF_X) &&
            (!e->found || (off >= ph[i].p_vaddr && off < ph[i].p_vaddr + ph[i].p_memsz))) {
            e->vaddr = ph[i].p_vaddr;
            e->memsz = ph[i].p_memsz;
            e->offset = ph[i].p_offset;
            e->found = 1;
        }
        if (ph[i].p_type != PT_NOTE || e->build_id[0])
            continue;
        unsigned char note[4096];
        size_t n = ph[i].p_filesz < sizeof note ? ph[i].p_filesz : sizeof note;
        if (pread(fd, note, n, (off_t)ph[i].p_offset) != (ssize_t)n)
            continue;
        /* notes: namesz, descsz, type, name and desc padded to 4 */
        for (size_t p = 0; p + 12 <= n;) {
            Elf64_Nhdr nh;
            memcpy(&nh, note + p, sizeof nh);
            size_t name = p + 12, desc = name + ((nh.n_namesz + 3) & ~3u);
            size_t end = desc + ((nh.n_descsz + 3) & ~3u);
            if (end > n)
                break;
            if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
                memcmp(note + name, "GNU", 4) == 0 && nh.n_descsz <= 64) {
                static const char hex[] = "0123456789abcdef";
                for (size_t k = 0; k < nh.n_descsz; k++) {
                    e->build_id[2 * k] = hex[note[desc + k] >> 4];
                    e->build_id[2 * k + 1] = hex[note[desc + k] & 15];
                }
                e->build_id[2 * nh.n_descsz] = '\0';
                break;
            }
            p = end;
        }
    }
    close(fd);
}

/* Mapping id of module index mod (0: unknown module, no mapping). */
static uint64_t mapping(uint32_t mod, uintptr_t off)
{
    const struct fb_track_module *m = mod ? fb_track_module(mod) : NULL;
    if (!m)
        return 0;
    int added;
    uint64_t id = table_get(&P.mappings, mod, 1, &added);
    if (!id || !added)
        return id;
    struct elf_info e;
    read_elf(m->path, off, &e);
    uint64_t start, limit, file_off;
    if (e.found) {
        start = m->bias + e.vaddr;
        limit = start + e.memsz;
        file_off = e.offset;
    } else {                      /* file gone: the page of this frame */
        start = (m->bias + off) & ~(uint64_t)4095;
        limit = start + 4096;
        file_off = (off & ~(uint64_t)4095);
    }
    int64_t fname = str(m->path), bid = str(e.build_id);
    struct pb mp;
    mp.n = 0;
    pb_uint(&mp, 1, id);
    pb_uint(&mp, 2, start);
    pb_uint(&mp, 3, limit);
    pb_uint(&mp, 4, file_off);
    pb_uint(&mp, 5, (uint64_t)fname);
    pb_uint(&mp, 6, (uint64_t)bid);
    /* the symbols come with the profile: readers need not look again */
    pb_uint(&mp, 7, 1);
    pb_uint(&mp, 8, 1);
    pb_uint(&mp, 9, 1);
    emit(3, &mp);
    return id;
}

static uint64_t function(const char *name, const char *file)
{
    int added;
    uint64_t key = hash_str(file, hash_str(name, 0xcbf29ce484222325ull));
    uint64_t id = table_get(&P.functions, key, 1, &added);
    if (id && !added)
        return id;
    if (!id)
        id = ++P.functions.n;
    int64_t n = str(name), f = str(file);
    struct pb m;
    m.n = 0;
    pb_uint(&m, 1, id);
    pb_uint(&m, 2, (uint64_t)n);
    pb_uint(&m, 3, (uint64_t)n);
    pb_uint(&m, 4, (uint64_t)f);
    emit(5, &m);
    return id;
}

/* Location id of frame i of s, writing it (and what it needs) when new.
 * Inlined calls (fb_report_frames) are further Lines of the same
 * location, innermost first, as pprof expects. */
static uint64_t location(const struct fb_track_site *s, unsigned i)
{
    uintptr_t pc = s->frames[i] - 1;         /* the call, not the return */
    int added;
    uint64_t id = table_get(&P.locations, pc, 1, &added);
    if (id && !added)
        return id;
    if (!id)
        id = ++P.locations.n;
    struct fb_report_frame fr[8];
    unsigned nf = fb_report_frames(s, i, fr, 8);
    struct pb m;
    m.n = 0;
    pb_uint(&m, 1, id);
    pb_uint(&m, 2, mapping(s->modules[i], fr[0].offset));
    pb_uint(&m, 3, pc);
    for (unsigned k = 0; k < nf; k++) {
        const struct fb_report_frame *f = &fr[k];
        char unknown[160];
        const char *name = f->sym.func;
        if (!name[0]) {
            /* as the folded report names it */
            fb_fmt_snprintf(unknown, sizeof unknown, "%s+0x%lx",
                            fb_report_base_name(f->module), (unsigned long)f->offset);
            name = unknown;
        }
        struct pb line;
        line.n = 0;
        pb_uint(&line, 1, function(name, f->sym.file));
        pb_uint(&line, 2, (uint64_t)(f->sym.line > 0 ? f->sym.line : 0));
        pb_msg(&m, 4, &line);
    }
    emit(4, &m);
    return id;
}

static const char *const report_names[] = {"leaks", "heap", "scope"};

/* A new file of our own, next to FBMALLOC_OUTPUT's: name.KIND.pb.gz, then
 * name.KIND.2.pb.gz ... (O_EXCL: never another file's content). */
static int open_own(enum fb_pprof_report what)
{
    const char *spec = fb_opt.output;
    if (strcmp(spec, "stderr") == 0 || strcmp(spec, "stdout") == 0) {
        /* In a setuid program, no file is created where the user could
         * choose (the current directory included). */
        if (getauxval(AT_SECURE)) {
            fb_fmt_dprintf(2, "fbmalloc: pprof report not written: a setuid "
                              "program writes no profile file\n");
            return -1;
        }
        spec = "fbmalloc.%p";
    }
    char base[FB_OPT_PATH_MAX + 32];
    fb_plat_expand_path(spec, getpid(), base, sizeof base);
    for (int n = 1; n < 1000; n++) {
        if (n == 1)
            fb_fmt_snprintf(P.path, sizeof P.path, "%s.%s.pb.gz", base, report_names[what]);
        else
            fb_fmt_snprintf(P.path, sizeof P.path, "%s.%s.%d.pb.gz", base,
                            report_names[what], n);
        int fd = open(P.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0)
            return fd;
        if (errno != EEXIST)
            break;
    }
    fb_fmt_dprintf(2, "fbmalloc: cannot create the pprof file \"%s\" (errno %d)\n",
                   P.path, errno);
    return -1;
}

int fb_pprof_begin(int fd, int out_fd, enum fb_pprof_report what)
{
    int saved = errno;
    memset(&P.strings, 0, sizeof P.strings);
    P.own_fd = -1;
    P.path[0] = '\0';
    P.what = what;
    if (fd == out_fd) {
        fd = open_own(what);
        if (fd < 0) {
            errno = saved;
            return -1;
        }
        P.own_fd = fd;
    }
    fb_gz_begin(&P.z, fd);
    str("");                                 /* string_table[0] */
    if (what == FB_PPROF_LEAKS) {
        P.nvalues = 4;
        value_type(1, "leaked_objects", "count");
        value_type(1, "leaked_space", "bytes");
        value_type(1, "reachable_objects", "count");
        value_type(1, "reachable_space", "bytes");
    } else {
        P.nvalues = 2;
        value_type(1, "inuse_objects", "count");
        value_type(1, "inuse_space", "bytes");
    }
    value_type(11, "space", "bytes");
    struct pb m;
    m.n = 0;
    pb_uint(&m, 12, 1);                      /* period: every allocation */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pb_uint(&m, 9, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
    char comment[FB_OPT_PATH_MAX + 96];
    fb_fmt_snprintf(comment, sizeof comment, "fbmalloc %s %s for pid %d (%s)",
                    FB_VERSION,
                    what == FB_PPROF_LEAKS ? "leak report"
                    : what == FB_PPROF_SCOPE ? "scope check" : "heap snapshot",
                    (int)getpid(), program_invocation_name ? program_invocation_name : "");
    pb_uint(&m, 13, (uint64_t)str(comment));
    pb_uint(&m, 14, (uint64_t)str(what == FB_PPROF_LEAKS ? "leaked_space" : "inuse_space"));
    fb_gz_write(&P.z, m.b, m.n);
    P.s_kind = str("kind");
    errno = saved;
    return 0;
}

void fb_pprof_sample(const struct fb_track_site *s, const char *kind,
                     uint64_t bytes, uint64_t blocks)
{
    /* ids first: each may write its own messages before the sample */
    uint64_t ids[FB_TRACK_MAX_DEPTH];
    unsigned depth = s ? s->depth : 0;
    if (depth > FB_TRACK_MAX_DEPTH)
        depth = FB_TRACK_MAX_DEPTH;
    for (unsigned i = 0; i < depth; i++)
        ids[i] = location(s, i);             /* frame 0 is the leaf */
    int64_t k = str(kind);

    struct pb m, packed, label;
    m.n = packed.n = label.n = 0;
    for (unsigned i = 0; i < depth; i++)
        pb_varint(&packed, ids[i]);
    if (packed.n)
        pb_msg(&m, 1, &packed);
    packed.n = 0;
    int reach = strcmp(kind, "reachable") == 0 && P.nvalues == 4;
    uint64_t v[4] = {reach ? 0 : blocks, reach ? 0 : bytes, reach ? blocks : 0,
                     reach ? bytes : 0};
    for (int i = 0; i < P.nvalues; i++)
        pb_varint(&packed, v[i]);
    pb_msg(&m, 2, &packed);
    pb_uint(&label, 1, (uint64_t)P.s_kind);
    pb_uint(&label, 2, (uint64_t)k);
    pb_msg(&m, 3, &label);
    emit(2, &m);
}

int fb_pprof_end(void)
{
    int rc = fb_gz_end(&P.z);
    table_free(&P.strings);
    table_free(&P.functions);
    table_free(&P.locations);
    table_free(&P.mappings);
    if (P.own_fd >= 0) {
        close(P.own_fd);
        if (rc == 0)
            fb_fmt_dprintf(2, "fbmalloc: %s profile written to %s (go tool pprof "
                              "-top %s)\n",
                           P.what == FB_PPROF_LEAKS ? "leak" : P.what == FB_PPROF_SCOPE
                               ? "scope" : "heap", P.path, P.path);
        P.own_fd = -1;
    }
    return rc;
}
