// Communicator over MPI_COMM_WORLD: non-blocking point-to-point for halo exchanges, MPI_Allreduce
// for gradients and metrics. Errors abort every rank (MPI_ERRORS_ARE_FATAL plus MPI_Abort). Every
// wait and collective polls its request against the timeout (Communicator::set_timeout) and
// throws CommTimeout instead of hanging.
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/error.hpp"
#include "engine/comm/communicator.hpp"

namespace adaqp::engine {
namespace {

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(int* argc, char*** argv) {
    int initialised = 0;
    MPI_Initialized(&initialised);
    // FUNNELED: OpenMP threads exist, and the calling thread lets MPI progress from inside a
    // parallel kernel (cpu::RowTick).
    int provided = MPI_THREAD_FUNNELED;
    if (!initialised) {
      // Open MPI's TCP transport moves data only inside MPI calls unless its progress thread runs;
      // without it a stale exchange or a gradient bucket in flight stalled through every kernel
      // that makes no MPI call (PipeGCN, Amazon Computers, 1 Gbit/s: exposed all-reduce 65-72 ms
      // per epoch, 25 with the thread; epoch 270 -> 232 ms). On unless the user set it
      // (OMPI_MCA_btl_tcp_progress_thread=0 turns it off); other MPI libraries ignore the variable.
      setenv("OMPI_MCA_btl_tcp_progress_thread", "1", 0);
      MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    } else
      MPI_Query_thread(&provided);
    if (provided < MPI_THREAD_FUNNELED)
      throw Error("this MPI library does not provide MPI_THREAD_FUNNELED (needed with OpenMP threads)");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) {
      wait_all();
      MPI_Finalize();
    }
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_size() const override { return local_size_; }

  int isend(const void* data, std::int64_t bytes, int peer, int tag) override {
    requests_.push_back(MPI_REQUEST_NULL);
    MPI_Isend(data, count(bytes), MPI_BYTE, peer, tag, MPI_COMM_WORLD, &requests_.back());
    return int(requests_.size()) - 1;
  }
  int irecv(void* data, std::int64_t bytes, int peer, int tag) override {
    requests_.push_back(MPI_REQUEST_NULL);
    MPI_Irecv(data, count(bytes), MPI_BYTE, peer, tag, MPI_COMM_WORLD, &requests_.back());
    return int(requests_.size()) - 1;
  }
  int iallreduce_sum(float* data, std::int64_t n) override {
    requests_.push_back(MPI_REQUEST_NULL);
    MPI_Iallreduce(MPI_IN_PLACE, data, count(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &requests_.back());
    return int(requests_.size()) - 1;
  }
  void wait(int request) override { complete(&requests_[std::size_t(request)], "message"); }
  void progress() override {
    if (requests_.empty()) return;
    int flag = 0;
    MPI_Testall(int(requests_.size()), requests_.data(), &flag, MPI_STATUSES_IGNORE);
  }
  void wait_all() override {
    const double t0 = MPI_Wtime();
    for (int flag = 0; !requests_.empty();) {
      MPI_Testall(int(requests_.size()), requests_.data(), &flag, MPI_STATUSES_IGNORE);
      if (flag) break;
      if (timeout_s_ > 0 && MPI_Wtime() - t0 > timeout_s_) {
        requests_.clear();  // abandoned: the run ends with this error
        throw CommTimeout("the step's last sends did not complete within " + seconds(timeout_s_) +
                          " (--comm-timeout): a peer stopped receiving");
      }
    }
    requests_.clear();
  }
  void allreduce_sum(float* data, std::int64_t n) override { allreduce(data, n, MPI_FLOAT, MPI_SUM); }
  void allreduce_sum(double* data, std::int64_t n) override { allreduce(data, n, MPI_DOUBLE, MPI_SUM); }
  void allreduce_sum(std::int64_t* data, std::int64_t n) override { allreduce(data, n, MPI_INT64_T, MPI_SUM); }
  void allreduce_max(double* data, std::int64_t n) override { allreduce(data, n, MPI_DOUBLE, MPI_MAX); }
  void allgather(std::uint64_t value, std::uint64_t* out) override {
    MPI_Request r;
    MPI_Iallgather(&value, 1, MPI_UINT64_T, out, 1, MPI_UINT64_T, MPI_COMM_WORLD, &r);
    complete(&r, "all-gather");
  }
  std::vector<std::vector<double>> allgather(const std::vector<double>& mine) override {
    std::vector<int> counts(size_), displs(size_, 0);
    const int n = count(std::int64_t(mine.size()));
    MPI_Request r;
    MPI_Iallgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD, &r);
    complete(&r, "all-gather");
    std::int64_t total = 0;
    for (int r = 0; r < size_; ++r) {
      displs[r] = count(total);
      total += counts[r];
    }
    std::vector<double> flat(static_cast<std::size_t>(total));
    MPI_Iallgatherv(mine.data(), n, MPI_DOUBLE, flat.data(), counts.data(), displs.data(), MPI_DOUBLE, MPI_COMM_WORLD,
                    &r);
    complete(&r, "all-gather");
    std::vector<std::vector<double>> out(size_);
    for (int r = 0; r < size_; ++r) out[r].assign(flat.begin() + displs[r], flat.begin() + displs[r] + counts[r]);
    return out;
  }
  void broadcast(std::vector<std::int32_t>& data, int root) override {
    std::int64_t n = std::int64_t(data.size());
    MPI_Request r;
    MPI_Ibcast(&n, 1, MPI_INT64_T, root, MPI_COMM_WORLD, &r);
    complete(&r, "broadcast");
    data.resize(std::size_t(n));
    MPI_Ibcast(data.data(), count(n), MPI_INT32_T, root, MPI_COMM_WORLD, &r);
    complete(&r, "broadcast");
  }
  double ping_pong(int peer, std::int64_t bytes, bool lead) override {
    probe_.resize(std::size_t(std::max<std::int64_t>(bytes, 1)));
    const int tag = 1 << 20;
    if (!lead) {
      MPI_Recv(probe_.data(), count(bytes), MPI_BYTE, peer, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      MPI_Send(probe_.data(), 1, MPI_BYTE, peer, tag, MPI_COMM_WORLD);
      return 0;
    }
    const double t0 = MPI_Wtime();
    MPI_Send(probe_.data(), count(bytes), MPI_BYTE, peer, tag, MPI_COMM_WORLD);
    MPI_Recv(probe_.data(), 1, MPI_BYTE, peer, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    return MPI_Wtime() - t0;
  }
  [[noreturn]] void abort(const std::string& message, int code) override {
    std::fprintf(stderr, "%s\n", message.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  static std::string seconds(double s) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%g s", s);
    return buf;
  }
  // Polls r until it completes; throws CommTimeout past the timeout (none when it is 0).
  void complete(MPI_Request* r, const char* what) {
    if (timeout_s_ <= 0) {
      MPI_Wait(r, MPI_STATUS_IGNORE);
      return;
    }
    const double t0 = MPI_Wtime();
    for (int flag = 0;;) {
      MPI_Test(r, &flag, MPI_STATUS_IGNORE);
      if (flag) return;
      if (MPI_Wtime() - t0 > timeout_s_)
        throw CommTimeout(std::string(what) + " did not complete within " + seconds(timeout_s_) +
                          " (--comm-timeout): a peer stopped or the link is down");
    }
  }
  void allreduce(void* data, std::int64_t n, MPI_Datatype type, MPI_Op op) {
    MPI_Request r;
    MPI_Iallreduce(MPI_IN_PLACE, data, count(n), type, op, MPI_COMM_WORLD, &r);
    complete(&r, "all-reduce");
  }
  static int count(std::int64_t n) {
    if (n > 2147483647) throw Error("MPI message of " + std::to_string(n) + " elements exceeds 2^31 - 1");
    return int(n);
  }
  int rank_ = 0, size_ = 1, local_size_ = 1;
  std::vector<MPI_Request> requests_;
  std::vector<char> probe_;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(int* argc, char*** argv) {
  return std::make_unique<MpiCommunicator>(argc, argv);
}

}  // namespace adaqp::engine
