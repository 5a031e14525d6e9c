#include "experiments/sweep.hpp"

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <vector>

#include "adaqp/build_info.hpp"
#include "adaqp/git_commit.hpp"
#include "base/atomic_file.hpp"
#include "base/error.hpp"
#include "engine/trainer.hpp"
#include "experiments/csv.hpp"
#include "experiments/manifest.hpp"
#include "experiments/paired.hpp"

namespace adaqp::experiments {

namespace fs = std::filesystem;

namespace {

std::string self_path() {
  std::error_code ec;
  const auto p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("sweep: cannot find the adaqp binary (/proc/self/exe)");
  return p.string();
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The model / training flags shared by train and simulate.
std::vector<std::string> model_flags(const Point& p) {
  const auto& v = p.values;
  std::vector<std::string> f = {"--dataset", v.at("dataset"), "--model",     v.at("model"),
                                "--layers",  v.at("layers"),  "--hidden",    v.at("hidden"),
                                "--dropout", v.at("dropout"), "--mode",      v.at("mode"),
                                "--bits",    v.at("bits"),    "--partition", v.at("partition")};
  if (v.at("stale") == "true") {
    f.push_back("--stale");
    f.push_back("--stale-momentum");
    f.push_back(v.at("stale_momentum"));
    if (v.at("stale_bound") != "none") {
      f.push_back("--stale-bound");
      f.push_back(v.at("stale_bound"));
    }
  }
  if (v.at("allreduce") != "overlap") {
    f.push_back("--allreduce");
    f.push_back(v.at("allreduce"));
  }
  if (v.at("boundary_rate") != "1") {
    f.push_back("--boundary-rate");
    f.push_back(v.at("boundary_rate"));
  }
  if (v.at("bits") == "adaptive")
    for (const char* k : {"lambda", "group_size", "assign_period", "assign_time", "widths"}) {
      if (std::string(k) == "assign_time" && v.at(k) == "range") continue;  // the default: older commands stay
      if (std::string(k) == "widths" && v.at(k) == "2,4,8") continue;
      std::string flag = std::string("--") + k;
      for (auto& c : flag)
        if (c == '_') c = '-';
      f.push_back(flag);
      f.push_back(v.at(k));
    }
  return f;
}

std::string engine_command(const Point& p, const std::string& adaqp, const std::string& records) {
  const auto& v = p.values;
  const std::string parts = v.at("parts");
  std::string cmd;
  if (v.at("link") != "none")
    cmd = "bash " + quote(std::string(build::kSourceDir) + "/benchmarks/link_emulation.sh") + " " + v.at("link") + " " +
          parts + " ";
  else if (parts != "1")
    cmd = "mpirun -np " + parts + " --oversubscribe ";
  cmd += quote(adaqp) + " train";
  for (const auto& f : model_flags(p)) cmd += " " + quote(f);
  for (const char* k : {"lr", "weight_decay", "seed", "epochs", "eval_every", "threads"}) {
    std::string flag = std::string("--") + k;
    for (auto& c : flag)
      if (c == '_') c = '-';
    cmd += " " + flag + " " + quote(v.at(k));
  }
  if (v.at("lr_schedule") != "constant") cmd += " --lr-schedule " + quote(v.at("lr_schedule"));
  // The split (graph/split.hpp): left out at its defaults, so older sweeps keep their commands.
  if (!v.at("split").empty()) cmd += " --split " + quote(v.at("split"));
  const std::string split_seed = v.at("split_seed") == "seed" ? v.at("seed") : v.at("split_seed");
  if (split_seed != "0") cmd += " --split-seed " + quote(split_seed);
  // Channel costs the bit assigner uses instead of probing the link (adaptive widths only).
  if (v.at("link_model") != "probe" && v.at("bits") == "adaptive") cmd += " --link-model " + quote(v.at("link_model"));
  return cmd + " --metrics " + quote(records);
}

// engine_records: the same point's engine run, whose last assignment gives an adaptive point its
// widths (the assigner's choice depends on run-time row ranges).
std::string simulator_command(const Point& p, const std::string& adaqp, const std::string& records,
                              const std::string& engine_records) {
  const auto& v = p.values;
  std::string cmd = quote(adaqp) + " simulate";
  for (const auto& f : model_flags(p)) cmd += " " + quote(f);
  if (v.at("bits") == "adaptive") cmd += " --width-mix " + quote(engine_records);
  if (v.at("link") == "none") cmd += " --topology " + quote(v.at("topology"));
  return cmd + " --parts " + v.at("parts") + " --profile " + quote(v.at("profile")) + " --link " + v.at("link") +
         " --metrics " + quote(records);
}

struct Run {
  const Point* point;
  std::string executor;  // engine | simulator
  std::string records, log, command;
};

// Runs a shell command, its output to `log` and (when echo_prefix is given) echoed line by line.
int run_command(const std::string& command, const std::string& log, const std::string* echo_prefix) {
  std::ofstream out(log);
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) throw Error("sweep: cannot start: " + command);
  char buf[4096];
  while (std::fgets(buf, sizeof(buf), pipe)) {
    out << buf;
    out.flush();
    if (echo_prefix) fmt::print("{}{}", *echo_prefix, buf);
  }
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

}  // namespace

int write_results_csv(const std::string& out) {
  const fs::path runs = fs::path(out) / "runs";
  std::vector<std::string> keys;
  for (const auto& [k, d] : axis_defaults())
    if (k != "executor") keys.push_back(k);  // the row's own executor column says which ran
  const std::vector<std::string> fields = {"strategy",           "ranks",
                                           "median_epoch_s",     "test_acc_at_best_val",
                                           "best_val_acc",       "best_epoch",
                                           "final_test_acc",     "tail_test_acc",
                                           "final_loss",         "total_train_s",
                                           "predicted_epoch_s",  "predicted_compute_s",
                                           "predicted_comm_s",   "predicted_quant_s",
                                           "predicted_reduce_s", "predicted_eval_s",
                                           "bytes_sent",         "bytes_meta"};
  std::ostringstream csv;
  csv << "id,executor";
  for (const auto& k : keys) csv << "," << k;
  for (const auto& f : fields) csv << "," << f;
  csv << "\n";
  int rows = 0;
  std::vector<FinishedRun> finished;  // for paired.csv
  std::vector<fs::path> files;
  if (fs::exists(runs))
    for (const auto& e : fs::directory_iterator(runs))
      if (e.path().extension() == ".jsonl") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    std::ifstream in(path);
    nlohmann::json run, summary, last_epoch;
    for (std::string line; std::getline(in, line);) {
      const auto r = nlohmann::json::parse(line, nullptr, false);
      if (r.is_discarded()) continue;
      const auto type = r.value("type", "");
      if (type == "run")
        run = r;
      else if (type == "summary")
        summary = r;
      else if (type == "epoch")
        last_epoch = r;
    }
    if (summary.is_null() || !run.contains("sweep_point")) continue;
    const std::string stem = path.stem().string();  // ID.EXECUTOR
    const auto dot = stem.rfind('.');
    csv << stem.substr(0, dot) << "," << stem.substr(dot + 1);
    const auto& values = run["sweep_point"];
    for (const auto& k : keys) csv << "," << csv_field(values.value(k, ""));
    FinishedRun fr;
    for (const auto& [k, v] : values.items())
      if (v.is_string()) fr.point[k] = v.get<std::string>();
    fr.executor = stem.substr(dot + 1);
    for (const auto& [k, v] : summary.items())
      if (v.is_number()) fr.summary[k] = v.get<double>();
    fr.strategy = summary.value("strategy", "");
    finished.push_back(std::move(fr));
    for (const auto& f : fields) {
      csv << ",";
      const nlohmann::json* src = summary.contains(f) ? &summary : (last_epoch.contains(f) ? &last_epoch : nullptr);
      if (src && (*src)[f].is_string())
        csv << csv_field((*src)[f].get<std::string>());
      else if (src && !(*src)[f].is_null())
        csv << (*src)[f].dump();
    }
    csv << "\n";
    ++rows;
  }
  write_file_atomically((fs::path(out) / "results.csv").string(), csv.str());
  write_file_atomically((fs::path(out) / "paired.csv").string(), paired_csv(paired_rows(finished)));
  return rows;
}

int run_sweep(const SweepOptions& o) {
  const Manifest m = load_manifest(o.manifest);
  const auto points = expand(m);
  if (o.jobs < 1) throw Error("--jobs " + std::to_string(o.jobs) + ": must be >= 1");
  const std::string out = o.out.empty() ? "results/" + m.name : o.out;
  const std::string adaqp = self_path();
  std::vector<Run> runs;
  for (const auto& p : points) {
    const std::string ex = p.values.at("executor");
    for (const std::string e : {"engine", "simulator"}) {
      if (ex != e && ex != "both") continue;
      Run r{&p, e, out + "/runs/" + p.id + "." + e + ".jsonl", out + "/logs/" + p.id + "." + e + ".log", ""};
      // An adaptive point's widths come from its engine run (listed, and so run, before it).
      if (e == "simulator" && p.values.at("bits") == "adaptive" && ex != "both") continue;
      r.command = e == "engine"
                      ? engine_command(p, adaqp, r.records + ".part")
                      : simulator_command(p, adaqp, r.records + ".part", out + "/runs/" + p.id + ".engine.jsonl");
      runs.push_back(r);
    }
  }
  if (o.dry_run) {
    fmt::print("{}: {} points, {} runs (manifest hash {})\n", m.path, points.size(), runs.size(), m.hash);
    for (std::size_t i = 0; i < runs.size(); ++i)
      fmt::print("[{}/{}] {} {}\n  {}\n", i + 1, runs.size(), runs[i].point->id, runs[i].executor, runs[i].command);
    return 0;
  }
  // OUT: new, the same manifest resumed, or (--resume) a manifest that only adds points to the
  // one that made OUT: every finished run in OUT is then one of this manifest's runs (same id).
  const std::string prov_path = out + "/sweep.json";
  nlohmann::json extends = nlohmann::json::array();  // hashes of the manifests OUT grew from
  if (fs::exists(prov_path)) {
    std::ifstream f(prov_path);
    const auto prov = nlohmann::json::parse(f, nullptr, false);
    const std::string hash = prov.is_object() ? prov.value("manifest_hash", "") : "";
    if (hash != m.hash) {
      const std::string other =
          out + ": holds the results of another manifest (hash " + hash + ", this one " + m.hash + ")";
      if (!o.resume) throw Error(other + ": choose another --out, or --resume if this manifest only adds points to it");
      std::set<std::string> mine;
      for (const auto& r : runs) mine.insert(fs::path(r.records).filename().string());
      if (fs::is_directory(out + "/runs"))
        for (const auto& e : fs::directory_iterator(out + "/runs")) {
          const std::string name = e.path().filename().string();
          if (name.size() > 6 && name.ends_with(".jsonl") && !mine.count(name))
            throw Error(other + " with run " + name + ", which this manifest does not have: choose another --out");
        }
      if (prov.contains("extends") && prov["extends"].is_array()) extends = prov["extends"];
      extends.push_back(hash);
    }
    if (!o.resume) throw Error(out + ": already holds this sweep: pass --resume to continue it");
  }
  fs::create_directories(out + "/runs");
  fs::create_directories(out + "/logs");
  nlohmann::json prov = {{"manifest", m.path},
                         {"manifest_name", m.name},
                         {"manifest_hash", m.hash},
                         {"git_commit", build::kGitCommit},
                         {"build", engine::build_record()},
                         {"host", engine::hostname()},
                         {"started_utc", engine::utc_now()},
                         {"points", points.size()},
                         {"runs", runs.size()}};
  if (!extends.empty()) prov["extends"] = extends;
  write_file_atomically(prov_path, prov.dump(2) + "\n");

  if (geteuid() == 0) {  // Open MPI refuses root unless told it is intended
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  }
  int failed = 0, done = 0, skipped = 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto finish = [&](const Run& r, int rc) {
    const std::string part = r.records + ".part";
    if (rc == 0 && fs::exists(part)) {
      // Tag the records with the point's values (the CSV's columns), then publish atomically.
      std::ifstream in(part);
      std::ostringstream text;
      bool first = true;
      for (std::string line; std::getline(in, line);) {
        if (first) {
          auto run = nlohmann::json::parse(line);
          run["sweep_point"] = r.point->values;
          run["sweep_id"] = r.point->id;
          run["sweep_manifest_hash"] = m.hash;
          line = run.dump();
          first = false;
        }
        text << line << "\n";
      }
      in.close();
      write_file_atomically(r.records, text.str());
      fs::remove(part);
    } else {
      ++failed;
      fs::remove(part);
      fmt::print("  failed (exit {}): see {}\n", rc, r.log);
      if (rc == 77) throw Error("link emulation unavailable for " + r.point->id + " (see " + r.log + ")");
    }
    ++done;
    write_results_csv(out);
  };
  const std::size_t n = runs.size();
  std::vector<const Run*> sim_batch;
  auto flush_sims = [&]() {
    for (std::size_t i = 0; i < sim_batch.size(); i += std::size_t(o.jobs)) {
      std::vector<std::future<int>> fut;
      for (std::size_t j = i; j < std::min(sim_batch.size(), i + std::size_t(o.jobs)); ++j)
        fut.push_back(
            std::async(std::launch::async, [r = sim_batch[j]] { return run_command(r->command, r->log, nullptr); }));
      for (std::size_t j = 0; j < fut.size(); ++j) finish(*sim_batch[i + j], fut[j].get());
    }
    sim_batch.clear();
  };
  for (std::size_t i = 0; i < n; ++i) {
    const Run& r = runs[i];
    if (fs::exists(r.records)) {
      ++skipped;
      continue;
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::size_t started = done;
    const double eta = started > 0 ? elapsed / double(started) * double(n - skipped - started) : 0;
    fmt::print("[{}/{}] {} {} (elapsed {:.0f} s{})\n", i + 1, n, r.point->id, r.executor, elapsed,
               started > 0 ? fmt::format(", ETA {:.0f} s", eta) : "");
    std::fflush(stdout);
    if (r.executor == "simulator" && o.jobs > 1) {
      sim_batch.push_back(&r);
      continue;
    }
    flush_sims();
    const std::string prefix = fmt::format("  [{}/{}] ", i + 1, n);
    finish(r, run_command(r.command, r.log, &prefix));
  }
  flush_sims();
  const int rows = write_results_csv(out);
  fmt::print("sweep {}: {} runs finished now, {} already finished, {} failed; {} rows in {}/results.csv\n", m.name,
             done - failed, skipped, failed, rows, out);
  return failed;
}

int run_report(const std::string& dir) {
  // A benchmarks/scale.sh folder (n<NODES>-p<P>/partition.json, no runs/): its table and figure.
  bool scale = false;
  if (fs::is_directory(dir) && !fs::is_directory(fs::path(dir) / "runs"))
    for (const auto& e : fs::directory_iterator(dir))
      scale = scale || (e.is_directory() && e.path().filename().string().starts_with("n") &&
                        fs::exists(e.path() / "partition.json"));
  if (!scale && !fs::is_directory(fs::path(dir) / "runs"))
    throw Error(dir +
                ": not a sweep results folder (no runs/; make one with adaqp sweep) nor a "
                "benchmarks/scale.sh folder");
  if (!scale) write_results_csv(dir);
  const std::string script = scale ? "/benchmarks/scale_table.py" : "/plots/report.py";
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("ADAQP_PYTHON"); env && *env) candidates.push_back(env);
  candidates.push_back("python3");
  candidates.push_back("/usr/bin/python3");
  for (const auto& py : candidates) {
    if (std::system((quote(py) + " -c 'import matplotlib' >/dev/null 2>&1").c_str()) != 0) continue;
    std::string cmd = quote(py) + " " + quote(std::string(build::kSourceDir) + script);
    if (!scale) {  // the one definition of the strategy axes (experiments/paired.hpp)
      std::string axes;
      for (const auto& a : strategy_axes()) axes += (axes.empty() ? "" : ",") + a;
      cmd += " --strategy-axes " + quote(axes);
    }
    cmd += " " + quote(dir);
    const int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  }
  throw Error("report needs Python 3 with matplotlib (Debian package python3-matplotlib; or set ADAQP_PYTHON)");
}

}  // namespace adaqp::experiments
