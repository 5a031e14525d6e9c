#include "scheduler/build_plan.hpp"

#include "scheduler/plan_builder.hpp"

namespace adaqp::scheduler {

Plan build_plan(const graph::PartitionShape& part, const ModelShape& model, Strategy strategy, bool training,
                Width width, const BitAssignment* assignment, const PeerOptions& peers) {
  return PlanBuilder(part, model, strategy, training, width, assignment, peers).build();
}

Plan build_plan(const graph::LocalPartition& part, const ModelShape& model, Strategy strategy, bool training,
                Width width, const BitAssignment* assignment, const PeerOptions& peers) {
  return build_plan(graph::shape_of(part), model, strategy, training, width, assignment, peers);
}

std::vector<Plan> build_plans(const std::vector<graph::LocalPartition>& parts, const ModelShape& model,
                              Strategy strategy, bool training, Width width, const BitAssignment* assignment,
                              const PeerOptions& peers) {
  std::vector<Plan> plans;
  for (const auto& p : parts) plans.push_back(build_plan(p, model, strategy, training, width, assignment, peers));
  validate(plans);
  return plans;
}

}  // namespace adaqp::scheduler
