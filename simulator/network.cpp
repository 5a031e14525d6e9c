#include "simulator/network.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "base/error.hpp"

namespace adaqp::simulator {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kEmulationBurstBytes = 256 * 1024;  // benchmarks/link_emulation.sh: tbf burst 256kb
// An emptied bucket lets the medium run fast again only once it holds a packet's worth (tbf sends a
// packet only when the bucket covers it; loopback's MTU is 64 KiB). Without this threshold a
// medium below its rate flipped between fast and slow on every sliver of credit: simulations of 4
// ranks on the emulated link took minutes for a 20k-node graph.
constexpr double kResumeBytes = 64 * 1024;
}  // namespace

std::string Topology::spec(int ranks) const {
  switch (kind) {
    case flat:
      return "flat";
    case shared:
      return "shared";
    case nodes:
      return "nodes=" + std::to_string((ranks + ranks_per_node - 1) / ranks_per_node) + "x" +
             std::to_string(ranks_per_node);
  }
  return "?";
}

Topology parse_topology(const std::string& spec, int ranks) {
  Topology t;
  if (spec == "flat") return t;
  if (spec == "shared") {
    t.kind = Topology::shared;
    return t;
  }
  if (spec.rfind("nodes=", 0) == 0) {
    const std::string v = spec.substr(6);
    const auto x = v.find('x');
    int n = 0, g = 0;
    try {
      std::size_t u1 = 0, u2 = 0;
      if (x == std::string::npos) throw std::invalid_argument(v);
      n = std::stoi(v.substr(0, x), &u1);
      g = std::stoi(v.substr(x + 1), &u2);
      if (u1 != x || u2 != v.size() - x - 1) throw std::invalid_argument(v);
    } catch (const std::exception&) {
      throw Error("--topology '" + spec + "': expected nodes=NxG (N nodes of G ranks)");
    }
    if (n < 1 || g < 1 || n * g != ranks)
      throw Error("--topology '" + spec + "': " + std::to_string(n) + " x " + std::to_string(g) + " ranks, but " +
                  std::to_string(ranks) + " ranks are simulated");
    t.kind = Topology::nodes;
    t.ranks_per_node = g;
    return t;
  }
  throw Error("--topology '" + spec + "': allowed flat, shared, nodes=NxG");
}

double parse_rate_bps(const std::string& rate) {
  std::size_t used = 0;
  double v = -1;
  try {
    v = std::stod(rate, &used);
  } catch (const std::exception&) {
  }
  const std::string unit = used < rate.size() ? rate.substr(used) : "";
  double scale = 0;
  if (unit == "kbit")
    scale = 1e3;
  else if (unit == "mbit")
    scale = 1e6;
  else if (unit == "gbit")
    scale = 1e9;
  if (!(v > 0) || scale == 0)
    throw Error("--link '" + rate + "': expected none, lo or a rate such as 100mbit, 1gbit, 10gbit");
  return v * scale;
}

Network make_network(const Profile& profile, int ranks, const std::string& topology, const std::string& link) {
  if (ranks < 1) throw Error("--parts " + std::to_string(ranks) + ": must be >= 1");
  Network net;
  net.ranks = ranks;
  auto find = [&](const std::string& name) -> const LinkClass* {
    const auto it = profile.links.find(name);
    return it == profile.links.end() ? nullptr : &it->second;
  };
  auto measured_allreduce = [&](const std::string& cls) {
    if (const LinkClass* a = find(cls + "-allreduce")) {
      net.allreduce_measured = true;
      net.allreduce = *a;
    }
  };
  if (link == "none") {
    net.topology = parse_topology(topology.empty() ? "flat" : topology, ranks);
    if (net.topology.kind != Topology::nodes) measured_allreduce("inter");
    const LinkClass* inter = find("inter");
    if (!inter && ranks > 1)
      throw Error("profile '" + profile.machine + "' has no link class 'inter' (run adaqp calibrate under mpirun)");
    if (inter) net.inter = *inter;
    const LinkClass* intra = find("intra");
    net.intra = intra ? *intra : net.inter;
    for (int a = 0; a < ranks; ++a)
      for (int b = 0; b < ranks; ++b)
        if (const LinkClass* pl = a != b ? find("inter@" + std::to_string(a) + "-" + std::to_string(b)) : nullptr)
          net.pairs[{a, b}] = *pl;
    return net;
  }
  if (link == "lo") {  // TCP over loopback without a rate limit: each direction on its own
    if (!topology.empty() && topology != "flat")
      throw Error("--link lo is TCP over this host's loopback: --topology must be flat or omitted");
    const LinkClass* lo = find("lo");
    if (!lo && ranks > 1)
      throw Error("profile '" + profile.machine +
                  "' has no link class 'lo' (calibrate under benchmarks/link_emulation.sh none)");
    if (lo) net.inter = *lo;
    net.intra = net.inter;
    measured_allreduce("lo");
    return net;
  }
  const double bps = parse_rate_bps(link);
  const bool cluster = !topology.empty() && topology != "shared";
  if (cluster) {
    net.topology = parse_topology(topology, ranks);
    if (net.topology.kind != Topology::nodes)
      throw Error("--link " + link + " emulates one shared loopback link (--topology shared or omitted) or " +
                  "a cluster of hosts (--topology nodes=NxG); got --topology " + topology);
  }
  const LinkClass* lo = find("lo");
  if (!lo && ranks > 1)
    throw Error("profile '" + profile.machine +
                "' has no link class 'lo' (calibrate under benchmarks/link_emulation.sh none)");
  if (cluster) {
    // The emulated cluster: each host's NIC at RATE per direction (TCP, latency of "lo"); ranks on
    // one host over shared memory (the profile's "intra", else "inter", probed under mpirun).
    net.inter.alpha_s = lo ? lo->alpha_s : 0;
    net.inter.beta_s_per_byte = 8.0 / bps;
    net.inter.source = "tbf rate " + link + " per host NIC";
    const LinkClass* intra = find("intra") ? find("intra") : find("inter");
    if (!intra && ranks > 1)
      throw Error("profile '" + profile.machine + "' has no link class 'inter' (run adaqp calibrate under mpirun)");
    if (intra) net.intra = *intra;
    net.one_machine = true;
    // Measured under the same emulation: adaqp calibrate --links-only --link-class nodesNxG-RATE
    // under cluster_emulation.sh N G RATE (Open MPI's algorithm over the NICs, not the ring's).
    measured_allreduce("nodes" + std::to_string(ranks / net.topology.ranks_per_node) + "x" +
                       std::to_string(net.topology.ranks_per_node) + "-" + link);
    return net;
  }
  net.topology.kind = Topology::shared;
  net.inter.alpha_s = lo ? lo->alpha_s : 0;
  net.inter.beta_s_per_byte = 8.0 / bps;
  net.inter.source = "tbf rate " + link;
  net.bucket_bytes = kEmulationBurstBytes;
  net.peak_bytes_per_s = lo && lo->beta_s_per_byte > 0 ? 1.0 / lo->beta_s_per_byte : 1e12;
  measured_allreduce("lo-" + link);
  net.intra = net.inter;
  return net;
}

AllreduceCost allreduce_cost(const Network& net, double bytes) {
  const int P = net.ranks;
  if (P <= 1) return {};
  if (net.allreduce_measured) {
    // The ring's growth from the m measured ranks to P: its 2 (P - 1) steps move bytes / P per
    // rank each; on one shared medium all P chunks of a step cross it one after the other.
    const double m = std::max(2, net.allreduce.ranks);
    const double growth =
        net.topology.kind == Topology::shared ? (P - 1) / (m - 1) : (double(P - 1) / P) / ((m - 1) / m);
    return {net.allreduce.alpha_s * (P - 1) / (m - 1), net.allreduce.beta_s_per_byte * bytes * growth};
  }
  const bool cross = net.topology.kind != Topology::nodes || net.topology.ranks_per_node < P;
  const LinkClass& l = cross ? net.inter : net.intra;
  const double steps = 2.0 * (P - 1), chunk = bytes / P;
  // Shared medium: the P chunks of a step cross it one after the other. Nodes: a node's G ranks
  // share its NIC in the ring's cross-node steps.
  double per_step = chunk * l.beta_s_per_byte;
  if (net.topology.kind == Topology::shared) per_step *= P;
  return {steps * l.alpha_s, steps * per_step};
}

double allreduce_seconds(const Network& net, double bytes) {
  const auto c = allreduce_cost(net, bytes);
  return c.latency_s + c.transfer_s;
}

FlowNetwork::FlowNetwork(const Network& net) : net_(net) {
  const int P = net.ranks;
  const double inter = net.inter.beta_s_per_byte > 0 ? 1.0 / net.inter.beta_s_per_byte : kInf;
  const double intra = net.intra.beta_s_per_byte > 0 ? 1.0 / net.intra.beta_s_per_byte : kInf;
  switch (net.topology.kind) {
    case Topology::flat:
      capacity_.assign(2 * std::size_t(P), inter);
      break;
    case Topology::shared:
      capacity_.assign(1, inter);
      break;
    case Topology::nodes: {
      const int N = (P + net.topology.ranks_per_node - 1) / net.topology.ranks_per_node;
      capacity_.assign(2 * std::size_t(P), intra);
      capacity_.resize(2 * std::size_t(P) + 2 * std::size_t(N), inter);
      break;
    }
  }
  for (const auto& [pair, link] : net.pairs) {
    pair_resource_[pair] = int(capacity_.size());
    capacity_.push_back(link.beta_s_per_byte > 0 ? 1.0 / link.beta_s_per_byte : kInf);
  }
  count_.assign(capacity_.size(), 0);
  if (net.topology.kind == Topology::shared && net.bucket_bytes > 0) tokens_ = net.bucket_bytes;  // full at start
}

double FlowNetwork::medium_throughput() const {
  double r = 0;
  for (int id : live_)
    if (flows_[std::size_t(id)].moving && !std::isinf(flows_[std::size_t(id)].rate)) r += flows_[std::size_t(id)].rate;
  return r;
}

std::vector<int> FlowNetwork::path_of(int src, int dst, bool* cross) const {
  const int P = net_.ranks;
  *cross = true;
  switch (net_.topology.kind) {
    case Topology::flat:
      return {src, P + dst};
    case Topology::shared:
      return {0};
    case Topology::nodes: {
      const int g = net_.topology.ranks_per_node, N = (P + g - 1) / g;
      *cross = src / g != dst / g;
      if (*cross) return {2 * P + src / g, 2 * P + N + dst / g};
      return {src, P + dst};
    }
  }
  return {};
}

double FlowNetwork::nominal_capacity(int resource) const {
  if (resource == 0 && net_.topology.kind == Topology::shared)
    return net_.inter.beta_s_per_byte > 0 ? 1.0 / net_.inter.beta_s_per_byte : kInf;
  return capacity_[std::size_t(resource)];
}

std::vector<int> FlowNetwork::start_ring(double latency_s, double transfer_s, double now) {
  if (now != now_) throw std::logic_error("FlowNetwork::start_ring: advance to the start time first");
  const int P = net_.ranks;
  std::vector<int> ids;
  if (P <= 1) return ids;
  std::vector<std::vector<int>> paths;
  std::map<int, int> uses;  // resource -> ring transfers crossing it
  for (int r = 0; r < P; ++r) {
    bool cross = true;
    paths.push_back(path_of(r, (r + 1) % P, &cross));
    for (int res : paths.back()) ++uses[res];
  }
  for (int r = 0; r < P; ++r) {
    double alone = kInf;  // its rate with only the ring on the network
    for (int res : paths[std::size_t(r)]) alone = std::min(alone, nominal_capacity(res) / uses[res]);
    Flow f;
    f.path = std::move(paths[std::size_t(r)]);
    f.ready_s = now_ + latency_s;
    f.remaining = std::isinf(alone) ? 0.0 : std::max(0.0, transfer_s) * alone;
    flows_.push_back(std::move(f));
    ids.push_back(int(flows_.size()) - 1);
    live_.push_back(ids.back());
    ++active_;
  }
  return ids;
}

int FlowNetwork::start(int src, int dst, double bytes, double now) {
  // The caller advances to `now` first and handles what completed by then.
  if (now != now_) throw std::logic_error("FlowNetwork::start: advance to the start time first");
  Flow f;
  bool cross = true;
  f.path = path_of(src, dst, &cross);
  f.ready_s = now_ + (cross ? net_.inter.alpha_s : net_.intra.alpha_s);
  if (const auto it = pair_resource_.find({src, dst}); it != pair_resource_.end()) {
    f.path.push_back(it->second);
    f.ready_s = now_ + net_.pairs.at({src, dst}).alpha_s;
  }
  f.remaining = std::max(0.0, bytes);
  flows_.push_back(std::move(f));
  const int id = int(flows_.size()) - 1;
  live_.push_back(id);
  ++active_;
  return id;
}

double FlowNetwork::resume_bytes() const {
  return std::min(net_.bucket_bytes / 4, kResumeBytes);  // the emulation: 256 KiB burst, 64 KiB packets
}

double FlowNetwork::next_completion() const {
  double t = kInf;
  // The bucket runs dry (the medium falls back to its rate).
  if (fast_ && tokens_ > 0) {
    const double drain = medium_throughput() - 1.0 / net_.inter.beta_s_per_byte;
    if (drain > 0) t = std::min(t, now_ + tokens_ / drain);
  }
  // The bucket refills to the packet's worth that lets the medium run fast again.
  if (!fast_ && net_.bucket_bytes > 0 && net_.topology.kind == Topology::shared && tokens_ < resume_bytes()) {
    const double fill = 1.0 / net_.inter.beta_s_per_byte - medium_throughput();
    if (fill > 0) t = std::min(t, now_ + (resume_bytes() - tokens_) / fill);
  }
  for (int id : live_) {
    const Flow& f = flows_[id];
    if (!f.moving)
      t = std::min(t, std::max(now_, f.ready_s));  // starts moving (or completes, if empty)
    else if (f.remaining <= 0 || std::isinf(f.rate))
      t = std::min(t, now_);
    else if (f.rate > 0)
      t = std::min(t, now_ + f.remaining / f.rate);
  }
  return t;
}

void FlowNetwork::reshare() {
  ++reshares_;
  if (net_.bucket_bytes > 0 && net_.topology.kind == Topology::shared)
    capacity_[0] = fast_ ? net_.peak_bytes_per_s : 1.0 / net_.inter.beta_s_per_byte;
  std::fill(count_.begin(), count_.end(), 0);
  for (int id : live_)
    if (flows_[id].moving)
      for (int r : flows_[id].path) ++count_[std::size_t(r)];
  for (int id : live_) {
    Flow& f = flows_[id];
    if (!f.moving) continue;
    double rate = kInf;
    for (int r : f.path) rate = std::min(rate, capacity_[std::size_t(r)] / count_[std::size_t(r)]);
    f.rate = rate;
  }
}

std::vector<int> FlowNetwork::advance(double t) {
  std::vector<int> done;
  if (t < now_) t = now_;
  // Move bytes up to t, stopping at every event in between: a transfer that starts moving or
  // completes changes the shares.
  for (;;) {
    const double to = std::min(t, next_completion());
    const double dt = to - now_;
    if (net_.bucket_bytes > 0 && net_.topology.kind == Topology::shared) {
      // Credit: spent above the rate while sending fast, earned below it (idle medium).
      const double rate = 1.0 / net_.inter.beta_s_per_byte, used = medium_throughput();
      tokens_ = std::clamp(tokens_ + (rate - used) * dt, 0.0, net_.bucket_bytes);
      if (tokens_ <= 1e-6) tokens_ = 0;
    }
    for (int id : live_) {
      Flow& f = flows_[id];
      if (!f.moving) continue;
      if (std::isinf(f.rate))
        f.remaining = 0;
      else
        f.remaining -= f.rate * dt;
      if (f.remaining <= 1e-9 * std::max(1.0, f.rate)) f.remaining = 0;  // rounding at the event time
    }
    now_ = to;
    bool changed = false;
    std::size_t keep = 0;
    for (std::size_t i = 0; i < live_.size(); ++i) {
      Flow& f = flows_[live_[i]];
      if (!f.moving && f.ready_s <= now_) f.moving = changed = true;
      if (f.moving && f.remaining <= 0) {
        f.done = changed = true;
        done.push_back(live_[i]);
        --active_;
      } else {
        live_[keep++] = live_[i];
      }
    }
    live_.resize(keep);
    if (net_.bucket_bytes > 0 && net_.topology.kind == Topology::shared) {
      // Credit whose drain (or missing credit whose refill) takes less than the clock's step at
      // now_ is spent (or there): its event could never move the clock (late in a long epoch a
      // sub-byte credit left by rounding spun the simulation forever).
      const double rate = 1.0 / net_.inter.beta_s_per_byte, used = medium_throughput();
      if (fast_ && used > rate && now_ + tokens_ / (used - rate) <= now_) tokens_ = 0;
      if (!fast_ && used < rate && now_ + (resume_bytes() - tokens_) / (rate - used) <= now_)
        tokens_ = std::max(tokens_, resume_bytes());
      // Spend while credit lasts; resume only with a packet's worth (rounding at the event time).
      const bool fast = fast_ ? tokens_ > 0 : tokens_ >= resume_bytes() * (1 - 1e-9);
      if (fast != fast_) {
        fast_ = fast;
        changed = true;
      }
    }
    if (changed)
      reshare();
    else if (now_ >= t)
      break;
  }
  return done;
}

}  // namespace adaqp::simulator
