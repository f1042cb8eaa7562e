/*
 * cxx_trap.cpp -- clean: what libstdc++ keeps on purpose is never a leak.
 * Without arguments: throws and catches exceptions (the exception objects
 * are freed; libstdc++'s emergency pool, allocated at start-up, stays
 * reachable), writes through std::cout, uses strings and containers, and
 * keeps a global std::string and std::vector alive until exit.
 *
 * With argument "cookie": a global holds the result of new Widget[10]
 * (Widget has a destructor, so operator new[] returned a block whose first
 * 8 bytes are the array cookie and the global points 8 bytes INTO the
 * block).  A conservative scan must count that interior pointer: the block
 * is still reachable (LeakSanitizer counts interior pointers; valgrind
 * calls it "still reachable" through its new[] heuristic).
 *
 * EXPECT: no leaks
 * EXPECT(cookie): no leaks
 */
#include <cstdint>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "leaktest.h"

struct Widget {
    std::uint64_t x = 0, y = 0;
    ~Widget() { x = 1; }
};

std::string global_name;
std::vector<int> global_numbers;
Widget *global_widgets;

static int thrower(int i)
{
    if (i % 2)
        throw std::runtime_error("odd number " + std::to_string(i)
                                 + " -- a message long enough for the heap");
    return i;
}

int main(int argc, char **argv)
{
    lt_init();
    if (argc > 1 && std::string(argv[1]) == "cookie") {
        global_widgets = new Widget[10];
        lt_scrub_stack();
        return 0;
    }
    int caught = 0;
    for (int i = 0; i < 20; i++) {
        try {
            thrower(i);
        } catch (const std::exception &e) {
            caught += e.what()[0] == 'o';
        }
    }
    std::map<std::string, int> m;
    for (int i = 0; i < 100; i++)
        m["key number " + std::to_string(i)] = i;
    global_name = "a global string that does not fit the small buffer";
    for (int i = 0; i < 1000; i++)
        global_numbers.push_back(i);
    std::cout << "caught " << caught << " exceptions, map size " << m.size()
              << std::endl;
    lt_scrub_stack();
    return 0;
}
