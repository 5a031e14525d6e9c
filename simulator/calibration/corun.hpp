// Co-running copies of the calibration microbenchmarks (MicrobenchOptions::corun): ranks on one
// host run their kernels side by side and share its caches and memory bandwidth, so a profile for
// N ranks per host times each kernel while N - 1 other processes run the same kernel on their own
// operands. Processes, like ranks, not threads: threads of one process share its BLAS library's
// state (two OpenBLAS callers in one process were timed 1.3-2.9x slower than two processes).
//
// The leader (the process that times) starts the partners (`Partners`), each a fresh process of
// this executable (`command`, plus "--corun-partner FD,SLOT"); they meet in a shared-memory block
// (a memfd the partners inherit). Per benchmark invocation the leader calls start(case): every
// partner sets the case up and calls it in a loop; start returns once all of them are calling;
// stop() ends the loops. A partner that exits or fails to set up within 10 minutes makes start
// throw; partners exit when the leader destroys Partners or itself exits.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace adaqp::bench::corun {

struct Block;

class Partners {
 public:
  // Starts `count` partners (count >= 1). Throws adaqp::Error when one cannot be started.
  Partners(int count, const std::vector<std::string>& command);
  ~Partners();  // tells the partners to exit and waits for them
  Partners(const Partners&) = delete;
  Partners& operator=(const Partners&) = delete;

  void start(int case_index);  // returns once every partner runs the case
  void stop();                 // every partner stops calling (after its current call)
  std::int64_t calls() const;  // calls the partners have made so far, all together

  // The partners of this process, or null (what the benchmarks' start / stop go through).
  static Partners* active();

 private:
  void shut();  // what the destructor does (also on a failed start)
  int fd_ = -1;
  Block* block_ = nullptr;
  std::vector<pid_t> pids_;
};

// In a partner: follows the leader's commands (spec "FD,SLOT" from --corun-partner) until told to
// exit or the leader is gone; make(i) sets case i up and returns its call. Returns the exit code.
int follow(const std::string& spec, const std::function<std::function<void()>(int)>& make);

}  // namespace adaqp::bench::corun
