// Experiment manifests (YAML): which runs a sweep makes. Every axis key takes one value or a list;
// the sweep is the cartesian product of the lists, minus the points an `exclude` entry matches.
//
//   name: quickstart                 # required; names the results
//   description: ...                 # optional
//   executor: both                   # engine | simulator | both (may be a list)
//   dataset: [cora, amazon-computers]
//   parts: 2                         # ranks
//   mode: [vanilla, adaqp]
//   bits: [32, 8]
//   link: [none, 1gbit]              # none (plain mpirun) or an emulated loopback rate
//   seed: [0, 1, 2]
//   epochs: 30
//   exclude:                         # drop every point matching all keys of one entry
//     - {mode: vanilla, bits: [8]}
//
// Axis keys and their values (defaults in brackets): executor [engine], dataset (required),
// partition [metis] (metis, metis-vol, metis-edges, random), parts [1], model [gcn] (gcn, sage), layers [2],
// hidden [64], dropout [0.5], lr [0.01], lr_schedule [constant] (constant, cosine: --lr-schedule; engine only),
// weight_decay [5e-4], mode [vanilla], bits [32 for vanilla
// and overlap, 8 otherwise] (1, 2, 4, 8, 16 = fp16, bf16, 32, adaptive), lambda [0.5], group_size [100],
// assign_period [50], assign_time [range] (range, compute or seconds: --assign-time), widths [2,4,8] (the
// adaptive assigner's choices, --widths; other values only with bits adaptive), link [none], seed [0], epochs
// [200], eval_every [1], threads [0], profile [profiles/this-machine.yaml] and topology [flat] (simulator); peer
// strategies (scheduler/peers.hpp): stale [false] (true: stale pipelining), stale_momentum [0], stale_bound [none]
// (none, auto or epochs: --stale-bound; only with stale), boundary_rate [1]; allreduce [overlap] (overlap, after:
// --allreduce);
// split [the dataset's own] (graph/split.hpp: classes:T,V, random:A,B, file[:K]) and split_seed [0] (an integer, or
// `seed`: each point's seed, so paired seeds also draw new splits); link_model [probe] (ALPHA_US:GBPS: the channel
// costs adaptive widths are assigned with, instead of probing the link; so accuracy seeds of a slow link can run on
// shared memory). Points whose values do not combine are dropped like fp32 modes at other widths: stale with overlap or
// adaqp, stale with boundary_rate < 1, stale_momentum > 0 without stale, and boundary sampling with adaptive widths. A
// dataset "shape:nodes=N,edges=E,features=F,classes=C[,halo=,marginal=,remote=,peers=]" is a partition model
// (graph::ShapeModel), for executor: simulator only. Errors name the file, the key and the allowed values
// (adaqp::Error).
#pragma once
#include <map>
#include <string>
#include <vector>

namespace adaqp::experiments {

// One run of a sweep: a value for every axis (defaults filled in), and a stable id.
struct Point {
  std::map<std::string, std::string> values;
  std::string id;  // "<dataset>-<mode>-<bits>-p<parts>-<link>-s<seed>-<hash8>", unique per values
};

struct Manifest {
  std::string path;
  std::string name, description;
  std::string hash;                                      // FNV-1a of the file's bytes, hex
  std::map<std::string, std::vector<std::string>> axes;  // every given axis key, values as written
  std::vector<std::map<std::string, std::vector<std::string>>> exclude;
};

Manifest load_manifest(const std::string& path);  // validates everything up front
std::vector<Point> expand(const Manifest& m);     // in a stable order; defaults filled in

// Gbit/s of a link axis value, a rate such as 250mbit, 1.5gbit or 500kbit (the one form the `link`
// axis takes besides none); NaN for anything else.
double link_rate_gbps(const std::string& link);

// The axis keys a manifest may use, with their defaults ("" = required).
const std::map<std::string, std::string>& axis_defaults();

}  // namespace adaqp::experiments
