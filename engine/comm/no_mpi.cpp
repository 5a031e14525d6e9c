// Built when ADAQP_MPI=OFF: multi-rank runs are unavailable, and say so.
#include "base/error.hpp"
#include "engine/comm/communicator.hpp"

namespace adaqp::engine {

std::unique_ptr<Communicator> make_mpi_communicator(int*, char***) {
  throw Error("this adaqp was built without MPI (ADAQP_MPI=OFF): run a single process, or rebuild with MPI");
}

}  // namespace adaqp::engine
