/*
 * stress-cxx: C++ under fbmalloc.
 *  1. STL containers (vector, string, map, unordered_map, list, deque,
 *     shared_ptr) under churn in 2 threads, with contents verified, objects
 *     handed between the threads (remote frees) and exceptions thrown.
 *  2. Every replaceable operator new/delete form called explicitly (plain,
 *     array, nothrow, sized, aligned, aligned nothrow, aligned sized), plus
 *     new-expressions of an alignas(64) type; alignment checked, memory
 *     filled and verified.
 *  3. Impossible requests: new throws std::bad_alloc, nothrow returns null.
 *  4. fbmalloc_stats_get proves that new/delete reached fbmalloc: a batch of
 *     N small news raises fast_mallocs by >= N (aligned: fast + backend).
 */
#include "stress.h"

#include <atomic>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

struct alignas(64) Aligned64 {
    unsigned char bytes[64 * 3];
};

struct alignas(256) Aligned256 {
    unsigned char bytes[256];
};

void check_align(const char *what, const void *p, size_t align)
{
    if (!p)
        fail("%s returned nullptr", what);
    if (reinterpret_cast<uintptr_t>(p) % align != 0)
        fail("%s returned %p: not aligned to %zu", what, p, align);
}

void fill_check(const char *what, void *p, size_t n)
{
    uint64_t seed = obj_seed(p, n);
    pattern_fill(p, n, seed);
    pattern_check(what, p, n, n, seed);
}

/* ---------- 1. STL churn ---------- */

struct Node {
    uint64_t key;
    std::string name;
    std::vector<uint64_t> data;
    explicit Node(uint64_t k)
        : key(k), name("node-" + std::to_string(k) + std::string(k % 100, 'x')),
          data(k % 64, k)
    {
    }
    void verify() const
    {
        if (name != "node-" + std::to_string(key) + std::string(key % 100, 'x'))
            fail("shared_ptr<Node> %llu: name corrupted", (unsigned long long)key);
        if (data.size() != key % 64)
            fail("shared_ptr<Node> %llu: vector size corrupted", (unsigned long long)key);
        for (uint64_t v : data)
            if (v != key)
                fail("shared_ptr<Node> %llu: vector content corrupted", (unsigned long long)key);
    }
};

std::mutex handoff_mu;
std::deque<std::shared_ptr<Node>> handoff; /* nodes made by one thread, dropped by the other */
std::atomic<unsigned long> stl_ops{0};

void stl_worker(int id, int iterations)
{
    uint64_t rng = rng_seed(static_cast<uint64_t>(id) * 65537 + 9);
    std::map<uint64_t, std::string> m;
    std::unordered_map<std::string, uint64_t> um;
    std::list<std::vector<int>> lst;
    std::deque<std::string> dq;

    for (int it = 0; it < iterations; it++) {
        uint64_t r = rng_next(&rng);
        /* vector growth (realloc-like pattern through new/delete) */
        {
            std::vector<uint64_t> v;
            size_t n = static_cast<size_t>(r % 2000);
            for (size_t i = 0; i < n; i++)
                v.push_back(i * 3 + r);
            for (size_t i = 0; i < n; i++)
                if (v[i] != i * 3 + r)
                    fail("vector content corrupted at %zu", i);
            v.resize(n / 2);
            v.shrink_to_fit();
        }
        /* strings: SSO and heap, appended */
        {
            std::string s;
            for (int i = 0; i < static_cast<int>(r % 50); i++)
                s += std::to_string(i) + ",";
            std::string t = s + s;
            if (t.size() != 2 * s.size() || t.compare(0, s.size(), s) != 0)
                fail("string concatenation corrupted");
        }
        /* map / unordered_map insert and erase */
        {
            uint64_t k = rng_next(&rng) % 5000;
            std::string val = std::string(k % 300, static_cast<char>('a' + k % 26));
            if (m.size() > 2000)
                m.erase(m.begin());
            if (um.size() > 2000)
                um.erase(um.begin());
            m[k] = val;
            um[std::to_string(k)] = k;
            auto f = m.find(k);
            if (f == m.end() || f->second != val)
                fail("map lookup of %llu failed", (unsigned long long)k);
            auto g = um.find(std::to_string(k));
            if (g == um.end() || g->second != k)
                fail("unordered_map lookup of %llu failed", (unsigned long long)k);
        }
        /* list / deque */
        {
            lst.emplace_back(static_cast<size_t>(r % 100), static_cast<int>(r % 1000));
            if (lst.size() > 500)
                lst.pop_front();
            dq.push_back(std::string(static_cast<size_t>(r % 200), 'd'));
            if (dq.size() > 1000)
                dq.pop_front();
            const std::vector<int> &back = lst.back();
            for (int x : back)
                if (x != static_cast<int>(r % 1000))
                    fail("list<vector<int>> content corrupted");
        }
        /* shared_ptr: make here, release in the other thread */
        {
            auto node = std::make_shared<Node>(rng_next(&rng) % 100000);
            std::shared_ptr<Node> other;
            {
                std::lock_guard<std::mutex> lock(handoff_mu);
                handoff.push_back(node);
                if (handoff.size() > 64) {
                    other = std::move(handoff.front());
                    handoff.pop_front();
                }
            }
            if (other) {
                other->verify();
                other.reset();
            }
        }
        /* exceptions allocate through __cxa_allocate_exception */
        if (r % 16 == 0) {
            try {
                throw std::runtime_error(std::string(r % 500, 'e'));
            } catch (const std::runtime_error &e) {
                if (std::string(e.what()).size() != r % 500)
                    fail("exception message corrupted");
            }
        }
        stl_ops++;
    }
}

/* ---------- 2. every operator new/delete form ---------- */

void operator_forms()
{
    const size_t sizes[] = {1, 8, 24, 100, 1000, 5000, 200000};
    const size_t aligns[] = {16, 32, 64, 128, 256, 1024, 4096};
    for (size_t n : sizes) {
        void *p = ::operator new(n);
        check_align("operator new(n)", p, n >= 16 ? 16 : 8);
        fill_check("operator new(n)", p, n);
        ::operator delete(p);

        p = ::operator new(n);
        fill_check("operator new(n) [sized delete]", p, n);
        ::operator delete(p, n);

        p = ::operator new[](n);
        check_align("operator new[](n)", p, n >= 16 ? 16 : 8);
        fill_check("operator new[](n)", p, n);
        ::operator delete[](p);

        p = ::operator new[](n);
        fill_check("operator new[](n) [sized delete]", p, n);
        ::operator delete[](p, n);

        p = ::operator new(n, std::nothrow);
        check_align("operator new(n, nothrow)", p, n >= 16 ? 16 : 8);
        fill_check("operator new(n, nothrow)", p, n);
        ::operator delete(p, std::nothrow);

        p = ::operator new[](n, std::nothrow);
        check_align("operator new[](n, nothrow)", p, n >= 16 ? 16 : 8);
        fill_check("operator new[](n, nothrow)", p, n);
        ::operator delete[](p, std::nothrow);

        for (size_t a : aligns) {
            std::align_val_t al{a};
            p = ::operator new(n, al);
            check_align("operator new(n, align_val_t)", p, a);
            fill_check("operator new(n, align_val_t)", p, n);
            ::operator delete(p, al);

            p = ::operator new(n, al);
            check_align("operator new(n, align_val_t) [sized delete]", p, a);
            fill_check("operator new(n, align_val_t) [sized delete]", p, n);
            ::operator delete(p, n, al);

            p = ::operator new[](n, al);
            check_align("operator new[](n, align_val_t)", p, a);
            fill_check("operator new[](n, align_val_t)", p, n);
            ::operator delete[](p, al);

            p = ::operator new[](n, al);
            check_align("operator new[](n, align_val_t) [sized delete]", p, a);
            fill_check("operator new[](n, align_val_t) [sized delete]", p, n);
            ::operator delete[](p, n, al);

            p = ::operator new(n, al, std::nothrow);
            check_align("operator new(n, align_val_t, nothrow)", p, a);
            fill_check("operator new(n, align_val_t, nothrow)", p, n);
            ::operator delete(p, al, std::nothrow);

            p = ::operator new[](n, al, std::nothrow);
            check_align("operator new[](n, align_val_t, nothrow)", p, a);
            fill_check("operator new[](n, align_val_t, nothrow)", p, n);
            ::operator delete[](p, al, std::nothrow);
        }
    }

    /* new-expressions of over-aligned types (use the aligned forms). */
    std::vector<Aligned64 *> v64;
    std::vector<Aligned256 *> v256;
    for (int i = 0; i < 200; i++) {
        Aligned64 *a = new Aligned64;
        check_align("new alignas(64) struct", a, 64);
        fill_check("new alignas(64) struct", a->bytes, sizeof a->bytes);
        v64.push_back(a);
        Aligned256 *b = new Aligned256[3];
        check_align("new alignas(256) struct[3]", b, 256);
        fill_check("new alignas(256) struct[3]", b, 3 * sizeof *b);
        v256.push_back(b);
    }
    for (Aligned64 *a : v64)
        delete a;
    for (Aligned256 *b : v256)
        delete[] b;
    {
        std::vector<Aligned64> vec(100);
        check_align("std::vector<alignas(64)>", vec.data(), 64);
    }
    printf("checked: operator new/new[] plain, nothrow, sized delete, align_val_t "
           "(16..4096) with plain/sized/nothrow delete, new-expressions of alignas(64) and "
           "alignas(256) types: all aligned, all writable\n");
}

/* ---------- 3. impossible requests ---------- */

void impossible()
{
    volatile size_t huge = SIZE_MAX / 2;
    size_t n = huge;
    bool threw = false;
    try {
        char *p = new char[n];
        fail("new char[SIZE_MAX/2] returned %p instead of throwing", static_cast<void *>(p));
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    if (!threw)
        fail("new char[SIZE_MAX/2] did not throw std::bad_alloc");
    threw = false;
    try {
        void *p = ::operator new(n);
        fail("operator new(SIZE_MAX/2) returned %p instead of throwing", p);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    if (!threw)
        fail("operator new(SIZE_MAX/2) did not throw");
    threw = false;
    try {
        void *p = ::operator new(n, std::align_val_t{256});
        fail("operator new(SIZE_MAX/2, align 256) returned %p instead of throwing", p);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    if (!threw)
        fail("aligned operator new(SIZE_MAX/2) did not throw");
    char *q = new (std::nothrow) char[n];
    if (q)
        fail("new (nothrow) char[SIZE_MAX/2] returned %p, expected nullptr",
             static_cast<void *>(q));
    void *r = ::operator new(n, std::nothrow);
    if (r)
        fail("operator new(SIZE_MAX/2, nothrow) returned %p, expected nullptr", r);
    r = ::operator new[](n, std::nothrow);
    if (r)
        fail("operator new[](SIZE_MAX/2, nothrow) returned %p, expected nullptr", r);
    r = ::operator new(n, std::align_val_t{256}, std::nothrow);
    if (r)
        fail("operator new(SIZE_MAX/2, align 256, nothrow) returned %p, expected nullptr", r);
    printf("checked: impossible new throws std::bad_alloc (plain, array, aligned); nothrow "
           "forms return nullptr\n");
}

/* ---------- 4. new/delete reach fbmalloc ---------- */

void stats_batches()
{
    /* Small enough to fit in one thread's buffer while all are live
     * (2000 x <= 144 B, against the 1 MiB default). */
    const size_t N = 2000;
    struct fbmalloc_stats a, b, c;
    if (!stats_get(&a)) {
        printf("note: fbmalloc not loaded, stats checks skipped\n");
        return;
    }
    if (!stats_counting(&a))
        fail("stress-cxx needs the per-call counters: run with FBMALLOC_STATS=json "
             "FBMALLOC_OUTPUT=/dev/null");
    std::vector<void *> ptrs(N);
    std::vector<int *> ints(N);

    /* plain small operator new: fast path */
    stats_get(&a);
    for (size_t i = 0; i < N; i++)
        ptrs[i] = ::operator new(16 + i % 128);
    stats_get(&b);
    for (size_t i = 0; i < N; i++)
        ::operator delete(ptrs[i], 16 + i % 128);
    stats_get(&c);
    if (b.fast_mallocs - a.fast_mallocs < N)
        fail("%zu x operator new(16..143) raised fast_mallocs by %llu only (backend_mallocs "
             "+%llu, buffer_full +%llu): new does not reach fbmalloc's fast path, or "
             "the buffer could not take them", N,
             (unsigned long long)(b.fast_mallocs - a.fast_mallocs),
             (unsigned long long)(b.backend_mallocs - a.backend_mallocs),
             (unsigned long long)(b.buffer_full - a.buffer_full));
    if (c.fast_frees - b.fast_frees < N)
        fail("%zu x sized operator delete raised fast_frees by %llu only", N,
             (unsigned long long)(c.fast_frees - b.fast_frees));
    printf("checked: %zu x operator new -> fast_mallocs +%llu; %zu x sized delete -> "
           "fast_frees +%llu\n", N, (unsigned long long)(b.fast_mallocs - a.fast_mallocs), N,
           (unsigned long long)(c.fast_frees - b.fast_frees));

    /* new-expressions of int[] */
    stats_get(&a);
    for (size_t i = 0; i < N; i++) {
        ints[i] = new int[1 + i % 50];
        ints[i][0] = static_cast<int>(i);
    }
    stats_get(&b);
    for (size_t i = 0; i < N; i++) {
        if (ints[i][0] != static_cast<int>(i))
            fail("new int[] content lost");
        delete[] ints[i];
    }
    if (b.fast_mallocs - a.fast_mallocs < N)
        fail("%zu x new int[] raised fast_mallocs by %llu only", N,
             (unsigned long long)(b.fast_mallocs - a.fast_mallocs));
    printf("checked: %zu x new int[] -> fast_mallocs +%llu\n", N,
           (unsigned long long)(b.fast_mallocs - a.fast_mallocs));

    /* aligned operator new(n, align_val_t(256)): fast or backend */
    stats_get(&a);
    for (size_t i = 0; i < N; i++)
        ptrs[i] = ::operator new(64 + i % 100, std::align_val_t{256});
    stats_get(&b);
    for (size_t i = 0; i < N; i++) {
        check_align("operator new(n, align_val_t(256))", ptrs[i], 256);
        ::operator delete(ptrs[i], 64 + i % 100, std::align_val_t{256});
    }
    stats_get(&c);
    {
        uint64_t got = (b.fast_mallocs - a.fast_mallocs) + (b.backend_mallocs - a.backend_mallocs);
        uint64_t freed = (c.fast_frees - b.fast_frees) + (c.backend_frees - b.backend_frees);
        if (got < N)
            fail("%zu x operator new(n, align_val_t(256)) raised fast_mallocs+backend_mallocs "
                 "by %llu only: aligned new does not reach fbmalloc", N,
                 (unsigned long long)got);
        if (freed < N)
            fail("%zu x aligned sized delete raised fast_frees+backend_frees by %llu only", N,
                 (unsigned long long)freed);
        printf("checked: %zu x aligned new -> fast+backend mallocs +%llu, frees +%llu\n", N,
               (unsigned long long)got, (unsigned long long)freed);
    }

    /* alignas(64) new-expression */
    std::vector<Aligned64 *> v(N);
    stats_get(&a);
    for (size_t i = 0; i < N; i++)
        v[i] = new Aligned64;
    stats_get(&b);
    for (size_t i = 0; i < N; i++) {
        check_align("new alignas(64) struct", v[i], 64);
        delete v[i];
    }
    {
        uint64_t got = (b.fast_mallocs - a.fast_mallocs) + (b.backend_mallocs - a.backend_mallocs);
        if (got < N)
            fail("%zu x new alignas(64) struct raised fast+backend mallocs by %llu only", N,
                 (unsigned long long)got);
        printf("checked: %zu x new alignas(64) struct -> fast+backend mallocs +%llu\n", N,
               (unsigned long long)got);
    }
    stats_get(&c);
    if (c.bad_frees != 0)
        fail("bad_frees = %llu", (unsigned long long)c.bad_frees);
    stats_print("stats", &c);
}

} // namespace

int main()
{
    double t0 = now_sec();
    struct fbmalloc_stats st;
    setvbuf(stdout, nullptr, _IOLBF, 0);
    stats_get(&st); /* fails clearly if fbmalloc is not loaded */

    {
        std::thread t1(stl_worker, 1, 200000), t2(stl_worker, 2, 200000);
        t1.join();
        t2.join();
        std::lock_guard<std::mutex> lock(handoff_mu);
        for (auto &n : handoff)
            n->verify();
        handoff.clear();
    }
    printf("checked: %lu STL iterations in 2 threads (vector, string, map, unordered_map, "
           "list, deque, shared_ptr handed across threads, exceptions), contents intact\n",
           stl_ops.load());
    operator_forms();
    impossible();
    stats_batches();
    printf("PASS stress-cxx in %.1f s\n", now_sec() - t0);
    return 0;
}
