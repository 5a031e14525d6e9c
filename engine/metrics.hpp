// Every number adaqp prints or records is defined here, once (docs/metrics.md has the table).
// Records are JSON Lines: one `run` record, one `epoch` record per epoch, one `summary` record.
#pragma once
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "scheduler/adaptive.hpp"
#include "scheduler/plan.hpp"

namespace adaqp::engine {

// Fraction of `total` nodes classified correctly; 0 when total == 0.
double accuracy(std::int64_t correct, std::int64_t total);

// Bytes one exchange (layer, direction) puts on the wire per epoch, all ranks.
struct ExchangeBytes {
  int layer = 0;
  std::string dir;           // "forward" | "backward"
  std::int64_t payload = 0;  // values (codes)
  std::int64_t meta = 0;     // per-row min / scale of quantized messages
};

// A bit-width re-assignment made after an epoch (adaptive widths).
struct AssignmentRecord {
  bool present = false;
  double solve_s = 0;                                     // solver wall time, all rounds
  std::vector<std::string> methods;                       // per round: milp-optimal, milp, greedy-fallback, random
  double objective = 0;                                   // normalised objective, summed over rounds
  double predicted_variance = 0;                          // model's weighted variance of the new widths
  std::map<scheduler::Width, std::int64_t> rows_at_bits;  // histogram of the new widths over message rows
  std::map<scheduler::ChannelKey, std::map<scheduler::Width, std::int64_t>> rows_by_channel;  // the same per channel
  double quant_error_sq = 0;        // measured sum of squared quantization errors of the epoch
  double quant_bound_sq = 0;        // the model's bound of the same sum
  std::int64_t quant_elements = 0;  // elements behind those two sums
  double time_scale_s = 0;          // the round time's normaliser (--assign-time; 0: each round's own T_max)
};

// Quantization error of one (layer, direction) in an epoch whose statistics were collected.
struct QuantLayerRecord {
  int layer = 0;
  std::string dir;      // "forward" | "backward"
  double error_sq = 0;  // measured sum of (x^ - x)^2 over the exchange's quantized elements, all ranks
  double model_sq = 0;  // the variance model's prediction of that sum: (C - 2) range^2 / (6 (2^b - 1)^2) per row
  double bound_sq = 0;  // its worst case: C range^2 / (4 (2^b - 1)^2) per row
  std::int64_t elements = 0;
};

struct EpochMetrics {
  std::int64_t epoch = 0;  // 1-based
  double loss = 0;         // training loss of this epoch's forward pass (with dropout), mean over train nodes
  bool evaluated = true;   // false on epochs skipped by --eval-every: accuracies and eval_s are absent
  double train_acc = 0, val_acc = 0, test_acc = 0;  // after this epoch's step, evaluation mode (no dropout)
  double epoch_s = 0;           // wall time of the training step (forward, loss, backward, optimizer), max over ranks
  double compute_s = 0;         // part of epoch_s spent in compute tasks (max over ranks)
  double comm_s = 0;            // part of epoch_s spent waiting on communication (max over ranks)
  double quant_s = 0;           // part of epoch_s spent quantizing / dequantizing (max over ranks)
  double reduce_s = 0;          // part of epoch_s spent in the gradient all-reduce (max over ranks)
  double eval_s = 0;            // wall time of the evaluation pass, not part of epoch_s
  std::int64_t bytes_sent = 0;  // bytes sent by all ranks in the training step (payload + metadata)
  std::int64_t bytes_meta = 0;  // metadata part of bytes_sent
  std::vector<ExchangeBytes> bytes_by_layer;     // bytes_sent split by layer and direction
  AssignmentRecord assignment;                   // present after a re-assignment
  std::vector<QuantLayerRecord> quant_by_layer;  // on epochs with collected statistics (quantized runs)
  // Stale pipelining only (stale = true): whether this epoch exchanged synchronously (the first, and
  // those --stale-bound forces), and the relative drift of the rows received into the stale stores,
  // sqrt(sum |received - stored|^2 / sum |stored|^2) over all ranks (NaN where not measured).
  bool stale = false, fresh = false;
  double stale_drift = std::numeric_limits<double>::quiet_NaN();
};

struct Summary {
  std::int64_t epochs = 0;
  int ranks = 1;
  std::string mode;
  std::string bits;
  std::string strategy;             // mode plus peer strategy (scheduler::strategy_name), e.g. "pipegcn"
  double best_val_acc = 0;          // max val_acc over evaluated epochs
  double test_acc_at_best_val = 0;  // test_acc of the first epoch reaching best_val_acc
  std::int64_t best_epoch = 0;
  // Less noisy than the best-validation pick when validation swings between evaluations:
  double final_test_acc = 0;  // test_acc of the last evaluated epoch
  double tail_test_acc = 0;   // mean test_acc of the last kTailEvaluations evaluated epochs
  double median_epoch_s = 0;  // median of epoch_s over all epochs
  double final_loss = 0;      // loss of the last epoch
  double total_train_s = 0;   // sum of epoch_s
  // Start-up and memory, maxima over ranks (0 when not measured, e.g. simulated runs):
  double load_s = 0;                                 // reading the dataset or the rank's part, seconds
  double partition_s = 0;                            // partitioning in memory (0 when read from a partition folder)
  std::int64_t peak_rss_bytes = 0;                   // peak resident memory of a rank's process (peak_rss_bytes())
  std::vector<std::int64_t> peak_rss_bytes_by_rank;  // the same per rank (empty when not measured)
  // Bytes of the arena of the rank that needs the most (scheduler::run_arena_bytes over every plan
  // the run made); 0 when the buffers are not shared (--buffers separate, cuda backend).
  std::int64_t arena_bytes = 0;
};

// Evaluations averaged by Summary::tail_test_acc (fewer when the run evaluated fewer times).
inline constexpr int kTailEvaluations = 5;

// Summary of a run's epochs (the one definition of best/median/final).
Summary summarize(const std::vector<EpochMetrics>& epochs, int ranks, const std::string& mode, const std::string& bits);

nlohmann::json to_json(const EpochMetrics& m);
// A `task` record of a trace (docs/metrics.md: task trace): the task's plan fields; the caller adds
// mean_s (train) or predicted_s (simulate).
nlohmann::json task_record(const scheduler::Task& t, int rank);
nlohmann::json to_json(const Summary& s);

// Writes JSON Lines to PATH.tmp and renames it to PATH on commit(); a writer destroyed without
// commit() (an error mid-run) removes the temporary file, so PATH is never half-written.
class RecordWriter {
 public:
  explicit RecordWriter(std::string path);  // empty path: records are dropped
  ~RecordWriter();
  RecordWriter(const RecordWriter&) = delete;
  RecordWriter& operator=(const RecordWriter&) = delete;
  void write(const nlohmann::json& record);
  void commit();

 private:
  std::string path_, tmp_;
  std::ofstream out_;
  bool committed_ = false;
};

}  // namespace adaqp::engine
