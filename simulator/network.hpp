// Network model of the simulator: a topology of rate-limited resources, alpha-beta link classes,
// and transfers that share the resources they cross with max-min fairness.
//
// Why fair sharing: every transport adaqp runs on (TCP under tc, shared memory, NCCL/IB) splits a
// busy link among the active streams rather than serving one at a time; max-min fairness is the
// steady state of TCP-like congestion control and of round-robin DMA engines. A transfer first
// waits its class's latency alpha_s, then moves its bytes at its fair share of every resource on
// its path (a resource of capacity 1 / beta_s_per_byte bytes per second); shares are recomputed
// whenever a transfer starts or ends.
//
// Topologies (`--topology`):
//   flat        every rank has its own full-duplex port (tx and rx resources) on link class `inter`
//   shared      one medium carries every transfer in both directions (the emulated loopback link
//               of docs/design.md: one token bucket on lo); class `inter`
//   nodes=NxG   N nodes of G ranks (rank r on node r / G): same-node transfers use per-rank ports
//               of class `intra`, cross-node transfers the nodes' NIC (tx and rx) of class `inter`
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "simulator/profile.hpp"

namespace adaqp::simulator {

struct Topology {
  enum Kind { flat, shared, nodes } kind = flat;
  int ranks_per_node = 1;             // nodes only
  std::string spec(int ranks) const;  // as parse_topology reads it
};
// "flat" | "shared" | "nodes=NxG" (N * G must equal ranks); throws adaqp::Error naming the value.
Topology parse_topology(const std::string& spec, int ranks);

struct Network {
  Topology topology;
  int ranks = 1;
  LinkClass intra, inter;  // intra: same-node (nodes topology only)
  // The all-reduce as measured on allreduce.ranks = m ranks (profile class "CLASS-allreduce":
  // seconds = alpha + beta * bytes per rank there; on P ranks alpha * (P - 1) / (m - 1) +
  // beta * bytes * g, g the ring's growth from m to P ranks: ((P - 1) / P) / ((m - 1) / m) where
  // each rank has its own port, (P - 1) / (m - 1) on one shared medium, which every chunk of
  // every step crosses); absent: the ring model on `inter`.
  bool allreduce_measured = false;
  LinkClass allreduce;
  // Per ordered pair (sender, receiver): the engine's per-channel probe (profile classes
  // "CLASS@S-D", written by adaqp calibrate under mpirun). A pair's transfers also cross a
  // resource of the pair's own bandwidth and take its latency instead of the class's.
  std::map<std::pair<int, int>, LinkClass> pairs;
  // Token bucket of the shared medium (tc tbf): up to bucket_bytes of credit accumulate at the
  // medium's rate while it is idle, and are spent at peak_bytes_per_s before the rate applies
  // again. 0: no bucket.
  double bucket_bytes = 0, peak_bytes_per_s = 0;
  // Every rank shares one machine's cores (the profile's cores_per_host), whatever the network
  // topology: true for the emulated cluster, whose "hosts" are namespaces of this one machine.
  // False: the ranks of a node (nodes=NxG) share a node's cores, other topologies one host's.
  bool one_machine = false;
  int ranks_sharing_cores() const {
    return topology.kind == Topology::nodes && !one_machine ? topology.ranks_per_node : ranks;
  }
};

// "100mbit", "250mbit", "1gbit", "10gbit", "500kbit" (tc's units) -> bits per second; throws
// adaqp::Error naming the value.
double parse_rate_bps(const std::string& rate);

// The network of a simulation:
//   link "none": the profile's own links on `topology` (default flat): class "inter" (and
//     "intra" for nodes=NxG; "inter" when the profile has no "intra"), with the per-pair classes
//     "inter@S-D" the profile holds.
//   link "lo": TCP over this host's loopback without a rate limit (link_emulation.sh none): flat,
//     class "lo".
//   link RATE (e.g. "1gbit"): the emulated loopback link of docs/design.md (benchmarks/
//     link_emulation.sh: tc tbf rate RATE, burst 256 KiB): one shared medium at exactly RATE with
//     a 256 KiB token bucket spent at the speed of class "lo" (TCP over loopback), latency of
//     "lo"; the all-reduce from "lo-RATE-allreduce" when calibrated under that emulation.
//     With topology nodes=NxG: the emulated cluster (benchmarks/cluster_emulation.sh N G RATE):
//     each node's NIC at RATE per direction (latency of "lo", no burst credit), same-node
//     transfers over shared memory (class "intra", else "inter"); the all-reduce by the ring model.
// Throws adaqp::Error naming the missing class or the bad value.
Network make_network(const Profile& profile, int ranks, const std::string& topology, const std::string& link);

// All-reduce of `bytes` per rank over every rank (ring: 2 (P - 1) steps of bytes / P), seconds
// after the last rank arrives when nothing else is on the network. 0 for one rank. On the shared
// medium every step's P chunks share it. With a measured 2-rank fit (alpha, beta): P - 1 alphas
// plus beta * bytes * 2 (P - 1) / P (equal to the fit at P = 2). Split into a latency part and a
// transfer part (allreduce_seconds is their sum): the simulator runs the transfer part as ring
// transfers on the FlowNetwork (start_ring), so an all-reduce shares the links with messages still
// in flight (stale pipelining's exchanges) instead of passing through them.
struct AllreduceCost {
  double latency_s = 0, transfer_s = 0;
};
AllreduceCost allreduce_cost(const Network& net, double bytes);
double allreduce_seconds(const Network& net, double bytes);

// Transfers in flight under fair sharing. Times in seconds, sizes in bytes.
class FlowNetwork {
 public:
  explicit FlowNetwork(const Network& net);
  // A transfer from rank src to rank dst starting at time `now`, which must be the time of the
  // last advance(); returns its id. It starts moving bytes after its class's alpha.
  int start(int src, int dst, double bytes, double now);
  // The transfers of a ring collective (rank r to r + 1 mod P, every rank), sized so that alone on
  // the network (at the links' nominal rates) they all complete transfer_s after now + latency_s;
  // with other transfers in flight they get their fair shares like any transfer. Returns their ids
  // (none for one rank). Same precondition on `now` as start().
  std::vector<int> start_ring(double latency_s, double transfer_s, double now);
  // Time at which the next transfer completes if nothing else starts (infinity when idle).
  double next_completion() const;
  // Advances to time t (<= next_completion()), returning the ids that completed at t.
  std::vector<int> advance(double t);
  bool idle() const { return active_ == 0; }
  std::int64_t reshares() const { return reshares_; }

 private:
  struct Flow {
    double ready_s = 0;     // when its bytes start to move (post + alpha)
    double remaining = 0;   // bytes
    double rate = 0;        // bytes / s while active
    std::vector<int> path;  // resource ids
    bool moving = false;    // past its latency: shares the resources
    bool done = false;
  };
  void reshare();
  // Resources a transfer from src to dst crosses (without a pair probe's resource); cross: it
  // uses class inter (else intra).
  std::vector<int> path_of(int src, int dst, bool* cross) const;
  double nominal_capacity(int resource) const;  // bytes / s, without the token bucket's peak
  double medium_throughput() const;             // bytes / s over resource 0 (shared topology)
  Network net_;
  double tokens_ = 0;  // token bucket credit (bytes), shared topology with a bucket
  bool fast_ = false;  // spending credit: resource 0 at the peak rate
  // Credit an empty bucket needs before the medium runs fast again (network.cpp: kResumeBytes).
  double resume_bytes() const;
  std::vector<double> capacity_;                      // bytes / s per resource
  std::map<std::pair<int, int>, int> pair_resource_;  // ordered pair -> its resource id
  std::vector<int> count_;                            // moving transfers per resource (reshare's scratch)
  std::vector<Flow> flows_;
  std::vector<int> live_;  // ids of flows not done
  int active_ = 0;
  double now_ = 0;
  std::int64_t reshares_ = 0;
};

}  // namespace adaqp::simulator
