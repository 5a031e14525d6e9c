// The one rule for failing together: run a step on every process of a group; when it throws
// adaqp::Error on any of them, every process throws adaqp::CollectiveError carrying the message of
// the lowest failing process, so no process waits in a collective for one that gave up and every
// process prints the same line. Used by the engine's shard loading (engine/shard_loader.cpp, over
// its Communicator) and by partitioning over MPI (graph/distributed_partition.cpp, over
// MPI_COMM_WORLD); each passes its group's two collectives:
//   lowest_failing(bool failed) -> int: the lowest process whose flag is set, -1 when none (every
//     process calls it once);
//   message_of(int first, std::string& message): process `first`'s message to every process.
// `who` names a process in the message ("rank", "process").
#pragma once
#include <string>
#include <utility>

#include "base/error.hpp"

namespace adaqp {

template <class Step, class LowestFailing, class MessageOf>
void agreed(Step&& step, LowestFailing&& lowest_failing, MessageOf&& message_of, const std::string& who) {
  std::string message;
  bool failed = false;
  try {
    std::forward<Step>(step)();
  } catch (const CollectiveError&) {
    throw;  // already agreed on
  } catch (const Error& e) {
    message = e.what();
    failed = true;
  }
  const int first = lowest_failing(failed);
  if (first < 0) return;
  message_of(first, message);
  throw CollectiveError(who + " " + std::to_string(first) + ": " + message);
}

}  // namespace adaqp
