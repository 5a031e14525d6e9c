#include "scheduler/peers.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/error.hpp"
#include "base/random.hpp"

namespace adaqp::scheduler {

void check_peers(const PeerOptions& p, Mode mode, bool adaptive) {
  if (!(p.stale_momentum >= 0 && p.stale_momentum < 1))
    throw Error("--stale-momentum " + std::to_string(p.stale_momentum) + ": must be in [0, 1)");
  if (p.stale_momentum > 0 && !p.stale) throw Error("--stale-momentum needs --stale");
  if (!(p.boundary_rate > 0 && p.boundary_rate <= 1))
    throw Error("--boundary-rate " + std::to_string(p.boundary_rate) + ": must be in (0, 1]");
  if (p.stale && strategy_of(mode) == Strategy::overlap)
    throw Error(std::string("--stale with --mode ") + to_string(mode) +
                ": stale pipelining already overlaps the whole exchange; use --mode vanilla or quant");
  if (p.stale && p.sampled())
    throw Error(
        "--stale with --boundary-rate: not supported together (a stale store would hold another "
        "epoch's sample)");
  if (adaptive && p.sampled())
    throw Error(
        "--boundary-rate with --bits adaptive: not supported (adaptive layouts assume every row travels "
        "every epoch)");
}

std::string strategy_name(Mode mode, const PeerOptions& p) {
  auto num = [](double v) {
    std::string s = std::to_string(v);
    s.erase(s.find_last_not_of('0') + 1);
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  };
  std::string base = to_string(mode);
  if (p.stale) {
    std::string s = "pipegcn";
    if (p.stale_momentum > 0) s += "-m" + num(p.stale_momentum);
    return mode == Mode::quant ? "quant+" + s : s;
  }
  if (p.sampled()) {
    const std::string s = "bns-" + num(p.boundary_rate);
    return mode == Mode::vanilla ? s : base + "+" + s;
  }
  return base;
}

std::int64_t sampled_rows(std::int64_t rows, double rate) {
  if (rate >= 1) return rows;
  return std::int64_t(std::floor(rate * double(rows)));
}

namespace {
// Keeps the sampled_rows() smallest scores of a boundary list; positions ascending.
std::vector<std::int32_t> keep(const std::vector<std::int64_t>& global_ids, double rate, std::uint64_t seed,
                               std::int64_t epoch, int owner, int holder) {
  const std::int64_t b = std::int64_t(global_ids.size()), s = sampled_rows(b, rate);
  std::vector<std::int32_t> pos(static_cast<std::size_t>(b));
  std::iota(pos.begin(), pos.end(), 0);
  if (s == b) return pos;
  std::vector<std::uint64_t> score(static_cast<std::size_t>(b));
  for (std::int64_t k = 0; k < b; ++k)
    score[std::size_t(k)] = hash_key({seed, std::uint64_t(epoch), std::uint64_t(owner), std::uint64_t(holder),
                                      std::uint64_t(global_ids[std::size_t(k)]), 0xb05ULL});
  auto less = [&](std::int32_t x, std::int32_t y) {
    return score[std::size_t(x)] != score[std::size_t(y)] ? score[std::size_t(x)] < score[std::size_t(y)] : x < y;
  };
  std::nth_element(pos.begin(), pos.begin() + s, pos.end(), less);
  pos.resize(std::size_t(s));
  std::sort(pos.begin(), pos.end());
  return pos;
}
}  // namespace

BoundarySample sample_boundary(const graph::LocalPartition& part, double rate, std::uint64_t seed, std::int64_t epoch) {
  const int P = part.parts, me = part.rank;
  BoundarySample out;
  out.send_pos.resize(std::size_t(P));
  out.halo_pos.resize(std::size_t(P));
  for (int q = 0; q < P; ++q) {
    if (q == me) continue;
    std::vector<std::int64_t> ids;
    for (auto r : part.send_rows[std::size_t(q)]) ids.push_back(part.inner_global[std::size_t(r)]);
    out.send_pos[std::size_t(q)] = keep(ids, rate, seed, epoch, me, q);
    ids.assign(part.halo_global.begin() + part.halo_begin[std::size_t(q)],
               part.halo_global.begin() + part.halo_begin[std::size_t(q) + 1]);
    out.halo_pos[std::size_t(q)] = keep(ids, rate, seed, epoch, q, me);
  }
  return out;
}

}  // namespace adaqp::scheduler
