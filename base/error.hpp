// adaqp::Error: the one exception type for user mistakes (bad file, key, value). Its message is a
// single line naming the file / key / value at fault; the CLI prints it and exits non-zero.
// A broken internal invariant throws std::logic_error naming the invariant, never this type.
// Library code never calls exit().
#pragma once
#include <stdexcept>
#include <string>

namespace adaqp {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// An Error every rank of a run throws together, having agreed on it (e.g. a bad partition folder
// found by one rank): the CLI prints it on every rank and ends them without MPI_Abort.
class CollectiveError : public Error {
 public:
  explicit CollectiveError(const std::string& message) : Error(message) {}
};

}  // namespace adaqp
