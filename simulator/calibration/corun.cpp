#include "simulator/calibration/corun.hpp"

#include <fmt/format.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <new>
#include <thread>

#include "base/error.hpp"

extern char** environ;

namespace adaqp::bench::corun {

namespace {
constexpr int kMaxPartners = 255;
constexpr std::int32_t kIdle = -1, kExit = -2;
constexpr auto kSetupLimit = std::chrono::minutes(10);
Partners* g_active = nullptr;

// This process's environment without the launcher's variables: a partner is a plain process, not
// a rank (engine::launched_by_mpirun reads them).
std::vector<std::string> partner_environment() {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string v = *e;
    if (v.rfind("OMPI_", 0) == 0 || v.rfind("PMIX_", 0) == 0 || v.rfind("PMI_", 0) == 0 ||
        v.rfind("MPI_LOCALNRANKS=", 0) == 0)
      continue;
    env.push_back(v);
  }
  return env;
}

std::vector<char*> pointers(std::vector<std::string>& v) {
  std::vector<char*> p;
  for (auto& s : v) p.push_back(s.data());
  p.push_back(nullptr);
  return p;
}
}  // namespace

// The shared-memory block. The leader writes `command`, then bumps `generation`; a partner that
// has set up the command's case stores that generation in its `ready` slot.
struct Block {
  std::atomic<std::int64_t> generation{0};
  std::atomic<std::int32_t> command{kIdle};
  std::atomic<std::int64_t> ready[kMaxPartners];
  std::atomic<std::int64_t> calls[kMaxPartners];  // calls each partner has made
};

Partners::Partners(int count, const std::vector<std::string>& command) {
  if (count < 1 || count > kMaxPartners)
    throw Error(fmt::format("co-run partners: {} (allowed 1 to {})", count, kMaxPartners));
  if (command.empty()) throw Error("co-run partners: no command to start them with");
  fd_ = memfd_create("adaqp-corun", 0);  // inherited by the partners (no close-on-exec)
  if (fd_ < 0 || ftruncate(fd_, sizeof(Block)) != 0) {
    const std::string why = std::strerror(errno);
    shut();
    throw Error("co-run partners: shared memory: " + why);
  }
  void* m = mmap(nullptr, sizeof(Block), PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (m == MAP_FAILED) {
    const std::string why = std::strerror(errno);
    shut();
    throw Error("co-run partners: mmap: " + why);
  }
  block_ = new (m) Block;
  for (auto& r : block_->ready) r.store(-1);
  for (auto& c : block_->calls) c.store(0);
  auto env = partner_environment();
  auto envp = pointers(env);
  for (int slot = 0; slot < count; ++slot) {
    std::vector<std::string> args = command;
    args.push_back("--corun-partner");
    args.push_back(fmt::format("{},{}", fd_, slot));
    auto argv = pointers(args);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), envp.data());
    if (rc != 0) {
      shut();
      throw Error(std::string("co-run partners: cannot start one: ") + std::strerror(rc));
    }
    pids_.push_back(pid);
  }
  g_active = this;
}

Partners::~Partners() {
  shut();
}

void Partners::shut() {
  if (g_active == this) g_active = nullptr;
  if (block_) {
    block_->command.store(kExit);
    block_->generation.fetch_add(1);
    for (pid_t pid : pids_) {
      int status = 0;
      if (pid > 0) waitpid(pid, &status, 0);
    }
    munmap(block_, sizeof(Block));
    block_ = nullptr;
  }
  pids_.clear();
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

Partners* Partners::active() {
  return g_active;
}

void Partners::start(int case_index) {
  block_->command.store(case_index);
  const std::int64_t g = block_->generation.fetch_add(1) + 1;
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    bool all = true;
    for (std::size_t s = 0; s < pids_.size(); ++s) all = all && block_->ready[s].load() == g;
    if (all) return;
    for (std::size_t s = 0; s < pids_.size(); ++s) {
      int status = 0;
      if (pids_[s] > 0 && waitpid(pids_[s], &status, WNOHANG) == pids_[s]) {
        pids_[s] = -1;
        throw Error(fmt::format("co-run partner {} exited ({} {}) before running benchmark case {}", s,
                                WIFEXITED(status) ? "code" : "signal",
                                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), case_index));
      }
    }
    if (std::chrono::steady_clock::now() - t0 > kSetupLimit)
      throw Error(fmt::format("co-run partners did not set benchmark case {} up within 10 minutes", case_index));
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

std::int64_t Partners::calls() const {
  std::int64_t n = 0;
  for (std::size_t s = 0; s < pids_.size(); ++s) n += block_->calls[s].load();
  return n;
}

void Partners::stop() {
  block_->command.store(kIdle);
  block_->generation.fetch_add(1);
}

int follow(const std::string& spec, const std::function<std::function<void()>(int)>& make) {
  int fd = -1, slot = -1;
  if (std::sscanf(spec.c_str(), "%d,%d", &fd, &slot) != 2 || fd < 0 || slot < 0 || slot >= kMaxPartners)
    throw Error("--corun-partner '" + spec + "': expected FD,SLOT (set by adaqp calibrate --corun)");
  void* m = mmap(nullptr, sizeof(Block), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) throw Error("--corun-partner '" + spec + "': " + std::strerror(errno));
  auto* block = static_cast<Block*>(m);
  const pid_t leader = getppid();
  std::int64_t seen = 0;
  for (;;) {
    std::int64_t g;
    while ((g = block->generation.load()) == seen) {
      if (getppid() != leader) return 1;  // the leader is gone
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    seen = g;
    const std::int32_t command = block->command.load();
    if (command == kExit) return 0;
    if (command == kIdle) continue;
    const auto call = make(command);
    block->ready[slot].store(seen);
    while (block->generation.load(std::memory_order_relaxed) == seen) {
      call();
      block->calls[slot].fetch_add(1, std::memory_order_relaxed);
    }
  }
}

}  // namespace adaqp::bench::corun
