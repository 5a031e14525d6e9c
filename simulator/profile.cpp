#include "simulator/profile.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <Eigen/Dense>
#include <cmath>
#include <set>
#include <sstream>

#include "base/atomic_file.hpp"
#include "base/error.hpp"
#include "scheduler/link_fit.hpp"
#include "simulator/cost_model.hpp"

namespace adaqp::simulator {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error(path + ": " + what);
}

void check_keys(const YAML::Node& node, const std::set<std::string>& allowed, const std::string& path,
                const std::string& where) {
  for (const auto& kv : node) {
    const auto key = kv.first.as<std::string>();
    if (!allowed.count(key)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      fail(path, "unknown key '" + where + key + "' (allowed: " + list + ")");
    }
  }
}

template <class T>
T get(const YAML::Node& node, const std::string& key, const std::string& path, const std::string& where) {
  if (!node[key]) fail(path, "missing key '" + where + key + "'");
  try {
    return node[key].as<T>();
  } catch (const YAML::Exception&) {
    fail(path, "key '" + where + key + "' has the wrong type");
  }
}

void emit_probe(YAML::Emitter& out, const HostProbe& probe) {
  out << YAML::Key << "grid" << YAML::Value << probe.grid;
  out << YAML::Key << "threads" << YAML::Value << probe.threads;
  out << YAML::Key << "corun" << YAML::Value << probe.corun;
  out << YAML::Key << "seconds" << YAML::Value << YAML::BeginMap;
  for (const auto& [name, s] : probe.seconds) out << YAML::Key << name << YAML::Value << s;
  out << YAML::EndMap;
}

HostProbe read_probe(const YAML::Node& node, const std::string& path, const std::string& where) {
  if (!node.IsMap()) fail(path, "key '" + where + "' must be a map");
  const std::string w = where.empty() ? "" : where + ".";
  check_keys(node,
             where.empty() ? std::set<std::string>{"version", "grid", "threads", "corun", "seconds"}
                           : std::set<std::string>{"grid", "threads", "corun", "seconds"},
             path, w);
  HostProbe probe;
  probe.grid = get<std::string>(node, "grid", path, w);
  if (probe.grid != "full" && probe.grid != "quick")
    fail(path, "'" + w + "grid' is '" + probe.grid + "' (allowed: full, quick)");
  probe.threads = get<int>(node, "threads", path, w);
  probe.corun = get<int>(node, "corun", path, w);
  if (probe.threads < 1 || probe.corun < 1) fail(path, "'" + w + "threads' and '" + w + "corun' must be >= 1");
  const YAML::Node seconds = node["seconds"];
  if (!seconds || !seconds.IsMap() || seconds.size() == 0) fail(path, "'" + w + "seconds' must be a non-empty map");
  for (const auto& kv : seconds) {
    const auto name = kv.first.as<std::string>();
    const double s = get<double>(seconds, name, path, w + "seconds.");
    if (!(s > 0) || !std::isfinite(s)) fail(path, "'" + w + "seconds." + name + "' must be finite and > 0");
    probe.seconds[name] = s;
  }
  return probe;
}

YAML::Node load_yaml(const std::string& path, const char* what) {
  try {
    return YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    fail(path, std::string("cannot open the ") + what);
  } catch (const YAML::Exception& e) {
    fail(path, std::string("not valid YAML: ") + e.what());
  }
}

}  // namespace

std::string to_yaml(const Profile& p) {
  YAML::Emitter out;
  out.SetDoublePrecision(9);
  out << YAML::BeginMap;
  out << YAML::Key << "version" << YAML::Value << p.version;
  out << YAML::Key << "machine" << YAML::Value << p.machine;
  out << YAML::Key << "backend" << YAML::Value << p.backend;
  out << YAML::Key << "date" << YAML::Value << p.date;
  out << YAML::Key << "source" << YAML::Value << p.source;
  out << YAML::Key << "threads" << YAML::Value << p.threads;
  out << YAML::Key << "cores_per_host" << YAML::Value << p.cores_per_host;
  out << YAML::Key << "corun" << YAML::Value << p.corun;
  out << YAML::Key << "post_s" << YAML::Value << p.post_s;
  out << YAML::Key << "compute" << YAML::Value << YAML::BeginMap;
  for (const auto& [name, fit] : p.compute) {
    out << YAML::Key << name << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "features" << YAML::Value << YAML::Flow << cost_class(name).features;
    out << YAML::Key << "coef_s" << YAML::Value << YAML::Flow << fit.coef_s;
    out << YAML::Key << "r2" << YAML::Value << fit.r2;
    out << YAML::Key << "samples" << YAML::Value << fit.samples;
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  out << YAML::Key << "links" << YAML::Value << YAML::BeginMap;
  for (const auto& [name, l] : p.links) {
    out << YAML::Key << name << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "alpha_s" << YAML::Value << l.alpha_s;
    out << YAML::Key << "beta_s_per_byte" << YAML::Value << l.beta_s_per_byte;
    out << YAML::Key << "bandwidth_gbps" << YAML::Value << (l.beta_s_per_byte > 0 ? 8e-9 / l.beta_s_per_byte : 0.0);
    out << YAML::Key << "r2" << YAML::Value << l.r2;
    out << YAML::Key << "source" << YAML::Value << l.source;
    if (l.ranks != 2) out << YAML::Key << "ranks" << YAML::Value << l.ranks;
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  if (!p.probe.seconds.empty()) {
    out << YAML::Key << "probe" << YAML::Value << YAML::BeginMap;
    emit_probe(out, p.probe);
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  return std::string("# adaqp calibration profile (simulator/profile.hpp); seconds, bytes\n") + out.c_str() + "\n";
}

void save_profile(const Profile& profile, const std::string& path) {
  write_file_atomically(path, to_yaml(profile));
}

void save_probe(const HostProbe& probe, const std::string& path) {
  YAML::Emitter out;
  out.SetDoublePrecision(9);
  out << YAML::BeginMap;
  out << YAML::Key << "version" << YAML::Value << kProfileVersion;
  emit_probe(out, probe);
  out << YAML::EndMap;
  write_file_atomically(
      path, std::string("# adaqp host-speed probe (simulator/profile.hpp); seconds per call\n") + out.c_str() + "\n");
}

HostProbe load_probe(const std::string& path) {
  const YAML::Node root = load_yaml(path, "probe");
  if (!root.IsMap()) fail(path, "a probe is a YAML map");
  const int version = get<int>(root, "version", path, "");
  if (version != kProfileVersion)
    fail(path,
         "version " + std::to_string(version) + " (this adaqp reads version " + std::to_string(kProfileVersion) + ")");
  return read_probe(root, path, "");
}

double rescale_to_probe(Profile& profile, const HostProbe& now) {
  const HostProbe& then = profile.probe;
  if (then.seconds.empty())
    throw Error("profile has no probe benchmarks (calibrated before 2026-12-07 or by hand): calibrate it again");
  if (then.grid != now.grid || then.threads != now.threads || then.corun != now.corun)
    throw Error(
        fmt::format("probe timed on the {} grid, {} thread(s), corun {}; the profile's on the {} grid, {} "
                    "thread(s), corun {}",
                    now.grid, now.threads, now.corun, then.grid, then.threads, then.corun));
  double log_sum = 0;
  for (const auto& [name, s] : then.seconds) {
    const auto it = now.seconds.find(name);
    if (it == now.seconds.end()) throw Error("probe lacks the profile's probe benchmark " + name);
    log_sum += std::log(it->second / s);
  }
  const double factor = std::exp(log_sum / double(then.seconds.size()));
  for (auto& [cls, fit] : profile.compute)
    for (double& c : fit.coef_s) c *= factor;
  return factor;
}

Profile load_profile(const std::string& path) {
  const YAML::Node root = load_yaml(path, "profile");
  if (!root.IsMap()) fail(path, "a profile is a YAML map");
  check_keys(root,
             {"version", "machine", "backend", "date", "source", "threads", "cores_per_host", "corun", "post_s",
              "compute", "links", "probe"},
             path, "");
  Profile p;
  p.version = get<int>(root, "version", path, "");
  if (p.version != kProfileVersion)
    fail(path, "version " + std::to_string(p.version) + " (this adaqp reads version " +
                   std::to_string(kProfileVersion) + ")");
  p.machine = get<std::string>(root, "machine", path, "");
  p.backend = get<std::string>(root, "backend", path, "");
  if (p.backend != "cpu" && p.backend != "cuda") fail(path, "backend '" + p.backend + "' (allowed: cpu, cuda)");
  p.date = get<std::string>(root, "date", path, "");
  p.source = get<std::string>(root, "source", path, "");
  p.threads = get<int>(root, "threads", path, "");
  if (p.threads < 1) fail(path, "threads " + std::to_string(p.threads) + ": must be >= 1");
  if (root["cores_per_host"]) p.cores_per_host = get<int>(root, "cores_per_host", path, "");
  if (root["corun"]) p.corun = get<int>(root, "corun", path, "");  // absent: 1 (profiles before 2026-12-07)
  if (p.corun < 1) fail(path, "corun " + std::to_string(p.corun) + ": must be >= 1");
  p.post_s = get<double>(root, "post_s", path, "");
  if (root["compute"]) {
    if (!root["compute"].IsMap()) fail(path, "key 'compute' must be a map of cost classes");
    for (const auto& kv : root["compute"]) {
      const auto name = kv.first.as<std::string>();
      const std::string where = "compute." + name + ".";
      const CostClass* cls = find_cost_class(name);
      if (!cls) fail(path, "unknown cost class 'compute." + name + "'");
      check_keys(kv.second, {"features", "coef_s", "r2", "samples"}, path, where);
      LinearFit fit;
      fit.coef_s = get<std::vector<double>>(kv.second, "coef_s", path, where);
      fit.r2 = get<double>(kv.second, "r2", path, where);
      fit.samples = get<std::int64_t>(kv.second, "samples", path, where);
      if (fit.coef_s.size() != cls->features.size())
        fail(path, "'" + where + "coef_s' has " + std::to_string(fit.coef_s.size()) + " values, cost class '" + name +
                       "' has " + std::to_string(cls->features.size()) + " features");
      for (double c : fit.coef_s)
        if (!(c >= 0) || !std::isfinite(c)) fail(path, "'" + where + "coef_s' must be finite and >= 0");
      p.compute[name] = fit;
    }
  }
  if (root["links"]) {
    if (!root["links"].IsMap()) fail(path, "key 'links' must be a map of link classes");
    for (const auto& kv : root["links"]) {
      const auto name = kv.first.as<std::string>();
      const std::string where = "links." + name + ".";
      check_keys(kv.second, {"alpha_s", "beta_s_per_byte", "bandwidth_gbps", "r2", "source", "ranks"}, path, where);
      LinkClass l;
      l.alpha_s = get<double>(kv.second, "alpha_s", path, where);
      l.beta_s_per_byte = get<double>(kv.second, "beta_s_per_byte", path, where);
      l.r2 = get<double>(kv.second, "r2", path, where);
      l.source = get<std::string>(kv.second, "source", path, where);
      if (!(l.alpha_s >= 0) || !(l.beta_s_per_byte > 0))
        fail(path, "'" + where + "': alpha_s must be >= 0 and beta_s_per_byte > 0");
      if (kv.second["ranks"]) {
        l.ranks = get<int>(kv.second, "ranks", path, where);
        if (l.ranks < 2) fail(path, "'" + where + "ranks' must be >= 2");
      }
      p.links[name] = l;
    }
  }
  if (root["probe"]) p.probe = read_probe(root["probe"], path, "probe");
  return p;
}

LinearFit fit_linear(const std::vector<Sample>& samples) {
  if (samples.empty()) throw Error("fit: no samples");
  const std::size_t k = samples.front().features.size();
  if (samples.size() < k)
    throw Error("fit: " + std::to_string(samples.size()) + " samples for " + std::to_string(k) + " features");
  std::vector<bool> active(k, true);
  Eigen::VectorXd coef = Eigen::VectorXd::Zero(Eigen::Index(k));
  for (std::size_t round = 0; round <= k; ++round) {
    std::vector<Eigen::Index> cols;
    for (std::size_t j = 0; j < k; ++j)
      if (active[j]) cols.push_back(Eigen::Index(j));
    if (cols.empty()) break;
    Eigen::MatrixXd a(Eigen::Index(samples.size()), Eigen::Index(cols.size()));
    Eigen::VectorXd b(Eigen::Index(samples.size()));
    for (std::size_t i = 0; i < samples.size(); ++i) {
      const double w = samples[i].seconds > 0 ? 1.0 / samples[i].seconds : 1.0;
      for (std::size_t c = 0; c < cols.size(); ++c)
        a(Eigen::Index(i), Eigen::Index(c)) = w * samples[i].features[std::size_t(cols[c])];
      b(Eigen::Index(i)) = w * samples[i].seconds;
    }
    const Eigen::VectorXd x = a.colPivHouseholderQr().solve(b);
    coef.setZero();
    bool negative = false;
    Eigen::Index worst = -1;
    for (std::size_t c = 0; c < cols.size(); ++c) {
      coef(cols[c]) = x(Eigen::Index(c));
      if (x(Eigen::Index(c)) < 0 && (worst < 0 || x(Eigen::Index(c)) < coef(worst))) worst = cols[c], negative = true;
    }
    if (!negative) break;
    active[std::size_t(worst)] = false;  // drop the most negative feature and refit
    coef.setZero();
  }
  LinearFit fit;
  fit.samples = std::int64_t(samples.size());
  for (std::size_t j = 0; j < k; ++j) fit.coef_s.push_back(std::max(0.0, coef(Eigen::Index(j))));
  // R^2 on seconds.
  double mean = 0;
  for (const auto& s : samples) mean += s.seconds;
  mean /= double(samples.size());
  double ss_res = 0, ss_tot = 0;
  for (const auto& s : samples) {
    double pred = 0;
    for (std::size_t j = 0; j < k; ++j) pred += fit.coef_s[j] * s.features[j];
    ss_res += (s.seconds - pred) * (s.seconds - pred);
    ss_tot += (s.seconds - mean) * (s.seconds - mean);
  }
  fit.r2 = ss_tot > 0 ? 1.0 - ss_res / ss_tot : 1.0;
  return fit;
}

LinkClass fit_link(const std::vector<std::pair<double, double>>& bytes_seconds) {
  const auto f = scheduler::fit_alpha_beta(bytes_seconds);
  return {f.alpha_s, f.beta_s_per_byte, f.r2, "probe"};
}

LinkClass fit_round_trip_link(const std::vector<std::pair<double, double>>& bytes_round_trip_s) {
  const auto f = scheduler::fit_round_trip(bytes_round_trip_s);
  return {f.alpha_s, f.beta_s_per_byte, f.r2, "probe"};
}

}  // namespace adaqp::simulator
