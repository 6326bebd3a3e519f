// libFuzzer target for the command line (scripts/fuzz.sh builds and runs it): the input is split
// at NUL bytes into argv after "loopspy", then parsed, checked and routed exactly as main does,
// never run. Whatever the words, parsing ends in a command or an exit code: no crash, no hang,
// no exception out of it. Help and error text go to /dev/null, a sanitizer's report to stderr.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <variant>
#include <vector>

#include "cli/command_line.hpp"

namespace {

// Words the parser knows, so that mutations reach past the first unknown flag: a byte 0x01-0x2F
// at the start of a word stands for the dictionary entry of that number.
const char* const kWords[] = {
    "record", "top", "replay", "dump", "-p", "--pid", "-d", "-r", "--rate", "--sampling", "per-cpu", "per-thread",
    "--task-rate", "-s", "-o", "--output", "--recording", "-f", "--format", "--flamegraph", "--collapsed", "--mode",
    "busy", "--slow-callbacks", "--sort", "--threshold", "--report", "--loop-thread", "--culprit-include",
    "--async", "--tasks", "--speedscope", "--pprof", "--trace", "--from", "--to", "--thread", "--json",
    "--nonblocking", "--force", "--", "-", "x.lspy", "x.svg", "x.json", "--help", "-V"};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    // loopspy's and CLI11's text goes nowhere; a sanitizer's report still reaches fd 2.
    std::freopen("/dev/null", "w", stdout);
    stderr = std::fopen("/dev/null", "w");
    static std::ofstream null("/dev/null");
    std::cerr.rdbuf(null.rdbuf());
    std::cout.rdbuf(null.rdbuf());
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::vector<std::string> words{"loopspy"};
    std::string word;
    auto finish = [&] {
        if (word.size() == 1 && static_cast<unsigned char>(word[0]) < sizeof(kWords) / sizeof(kWords[0]) + 1 &&
            word[0] != 0) {
            word = kWords[static_cast<unsigned char>(word[0]) - 1];
        }
        words.push_back(word);
        word.clear();
    };
    for (std::size_t i = 0; i < size && words.size() < 64; ++i) {
        if (data[i] == 0) finish();
        else word.push_back(static_cast<char>(data[i]));
    }
    if (!word.empty()) finish();
    std::vector<char*> argv;
    for (std::string& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    auto parsed = loopspy::parse_command_line(static_cast<int>(words.size()), argv.data());
    if (const int* code = std::get_if<int>(&parsed)) {
        if (*code != 0 && *code != 2) __builtin_trap();  // only help/version (0) or a bad argument (2)
    }
    return 0;
}
