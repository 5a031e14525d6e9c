// Communicator: what an executor needs from the transport between ranks. Buffers are borrowed
// (the caller keeps them alive until the request completes); sizes are in bytes; tags separate
// the exchanges of one plan (layer, direction).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/error.hpp"

namespace adaqp::engine {

// A wait or collective that did not complete within the communicator's timeout (the watchdog:
// a peer that stopped or a link that went down ends the run with a message, never a hang).
// Callers that know which task waited (engine::StepDriver) rethrow it with that context.
class CommTimeout : public Error {
 public:
  using Error::Error;
};

// Default of --comm-timeout: generous, since one wait can span a peer's whole layer of compute.
inline constexpr double kDefaultCommTimeout_s = 600;

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Number of ranks on this host (for picking threads per rank).
  virtual int local_size() const = 0;

  // Every wait and collective from now on throws CommTimeout when it has not completed within
  // seconds (0: wait forever). Transports that cannot time out ignore it.
  void set_timeout(double seconds) { timeout_s_ = seconds; }
  double timeout() const { return timeout_s_; }

  // Non-blocking point-to-point. Returns a request handle (>= 0) for wait/test.
  virtual int isend(const void* data, std::int64_t bytes, int peer, int tag) = 0;
  virtual int irecv(void* data, std::int64_t bytes, int peer, int tag) = 0;
  virtual void wait(int request) = 0;
  // Lets the transport move pending messages forward (called between compute tasks).
  virtual void progress() = 0;
  // Completes every outstanding request.
  virtual void wait_all() = 0;

  // Non-blocking in-place sum over all ranks (the gradient buckets): a request for wait / progress
  // like isend's; data must stay untouched until it completes. -1 (nothing to wait for) on one rank.
  virtual int iallreduce_sum(float* data, std::int64_t n) = 0;
  // In-place sums / maxima over all ranks.
  virtual void allreduce_sum(float* data, std::int64_t n) = 0;
  virtual void allreduce_sum(double* data, std::int64_t n) = 0;
  virtual void allreduce_sum(std::int64_t* data, std::int64_t n) = 0;
  virtual void allreduce_max(double* data, std::int64_t n) = 0;
  // Every rank's 64-bit value, gathered on every rank (out has size() entries).
  virtual void allgather(std::uint64_t value, std::uint64_t* out) = 0;
  // Every rank's vector (any length), gathered on every rank, indexed by rank.
  virtual std::vector<std::vector<double>> allgather(const std::vector<double>& mine) = 0;
  // Root's vector (any length) replaces everyone's.
  virtual void broadcast(std::vector<std::int32_t>& data, int root) = 0;
  // Blocking ping-pong for link probes: `lead` sends `bytes` to peer and waits for a 1-byte reply,
  // returning the round-trip seconds; the peer (lead = false) receives and replies, returning 0.
  virtual double ping_pong(int peer, std::int64_t bytes, bool lead) = 0;

  // Ends every rank's process with this message on stderr (fail fast: no rank is left hanging).
  [[noreturn]] virtual void abort(const std::string& message, int code) = 0;

 protected:
  double timeout_s_ = kDefaultCommTimeout_s;
};

// The one-rank communicator: collectives are the identity; point-to-point is an internal error.
std::unique_ptr<Communicator> make_self_communicator();

// MPI_COMM_WORLD (initialises MPI). Throws adaqp::Error if adaqp was built without MPI.
std::unique_ptr<Communicator> make_mpi_communicator(int* argc, char*** argv);

// True when this process was started by mpirun / mpiexec (Open MPI, MPICH or PMIx environment).
bool launched_by_mpirun();

}  // namespace adaqp::engine
